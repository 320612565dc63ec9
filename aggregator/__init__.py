"""Research news aggregator for CAR T-cell therapy in multiple sclerosis."""

__version__ = "0.1.0"
