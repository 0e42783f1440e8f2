"""Dataset loading, splitting, training, evaluation and the model card (`smsguard train` / `evaluate`)."""
