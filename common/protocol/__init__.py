"""The Deskhand wire protocol: typed messages and their binary codec."""
