"""The demo (``make demo``, ``make up``): drives the sandbox's worlds through the hub and checks
the outcome against the seed's truth. It names systems (it seeds them); the flows do not."""
