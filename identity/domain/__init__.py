"""What the provider is about, free of HTTP and OAuth machinery: ecosystems, partners,
people and clients, signing keys, token contents, revocation, sign-in sessions, DPoP proof
policy, secrets. Imports ``store`` only."""
