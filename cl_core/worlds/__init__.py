"""Generated demo worlds with known ground truth, used to train and check the bundled demo models."""
