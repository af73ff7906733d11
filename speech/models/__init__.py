"""Models: a front end, a GRU encoder and a classification or CTC head in one ``nn.Module``."""
from speech.models.model import ModelConfig, SpeechModel, count_parameters, expanded_head

__all__ = ["ModelConfig", "SpeechModel", "count_parameters", "expanded_head"]
