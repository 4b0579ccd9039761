"""Small models: the sync expert (syncnet.py) and the lip-sync generator (generator.py)."""
