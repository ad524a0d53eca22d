"""How partnermesh runs: the local launcher, NATS configs, compose and Kubernetes manifests."""
