"""`scae-hash serve`: a local web page and JSON API over one image index."""
