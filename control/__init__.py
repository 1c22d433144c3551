"""Control plane of Digitale Balie: admin API, join tokens, signalling WebSocket and static pages.

The control plane sits in front of the SFU (`sfu/`). It never touches media: it authenticates
participants with signed join tokens, relays signalling messages to the SFU and serves the page.
"""
