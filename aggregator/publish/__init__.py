"""Publishing stories to readers: output feeds (feeds.py, export.py), the email digest
(digest.py, sending.py, mailer.py) and the templates the page and the digest share."""
