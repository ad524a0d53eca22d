"""Version 1 of the partnermesh contracts, one module per owning service."""
