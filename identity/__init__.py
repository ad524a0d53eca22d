"""partnermesh identity: an OpenID Connect provider with one issuer per ecosystem."""
