"""shopsense: e-commerce search and recommendation ranked with each shopper's live profile (domain package, no Ray)."""
