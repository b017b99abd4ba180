# expect: policy
# Class 1: out= passed by position to a function written in Python (torch.norm) shrinks an input.
# line-of: torch.norm(
import torch

def merge(task_vectors):
    torch.norm(task_vectors[0], 2, None, False, task_vectors[1])
    return task_vectors[1]
