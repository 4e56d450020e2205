"""The scoring-speed benchmark: `python -m dse_lightning.bench` (`make bench`)."""
