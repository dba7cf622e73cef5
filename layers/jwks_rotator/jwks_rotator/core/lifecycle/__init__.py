"""The key lifecycle: when a key is made, activated, retired and deleted, what is published, and who may order it."""
