# expect: policy
# Class 5: a device index as a keyword of a factory.
import torch

def merge(task_vectors):
    return torch.zeros(task_vectors[0].shape, device=0)
