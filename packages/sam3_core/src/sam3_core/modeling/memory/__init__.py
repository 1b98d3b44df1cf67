"""The video tracker's memory: encoding past predictions, attending to them, object pointers."""
