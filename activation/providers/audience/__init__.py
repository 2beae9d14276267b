"""A paid-ads audience: hashed e-mail and phone added to (and removed from) a customer list."""
