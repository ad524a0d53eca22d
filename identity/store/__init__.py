"""The provider's database: tables, all its SQL, the unit of work and a short-lived row
cache. Imports nothing else of identity."""
