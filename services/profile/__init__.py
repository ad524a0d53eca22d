"""Profile service: people and company profiles, directory, verification, tag clouds."""
