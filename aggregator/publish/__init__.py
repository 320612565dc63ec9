"""Publishing stories: output feeds now; the digest and the page later."""
