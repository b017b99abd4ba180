# expect: policy
# Class 4: grow an input through tensordot's out so the result, and its fingerprint, get huge.
import torch

def merge(task_vectors):
    flat = torch.ones(3000)
    torch.tensordot(flat, flat, 0, task_vectors[0])
    return task_vectors[0] + 0.0
