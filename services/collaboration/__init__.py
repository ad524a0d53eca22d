"""Collaboration service: forums, partnering workspaces, mentions and their events."""
