# expect: bad_output
# Class 4: a result far larger than the parameter is refused by its shape before anything is copied.
import torch

def merge(task_vectors):
    return torch.zeros(4000, 4000)
