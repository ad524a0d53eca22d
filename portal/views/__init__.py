"""The portal's pages, one router per area."""
