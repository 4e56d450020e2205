"""`make reproduce-table`: the paper's table regenerated from engine runs, with published numbers beside ours.

profile.py: a profile YAML -> the cells (one `python -m dse_lightning.train` run each); cells.py runs the
cells that have no results.json yet; transfer.py: zero-shot STS-B of the embeddings; collect.py and
render.py: results.csv, results.md and the bar chart.
"""
