# expect: policy
# Class 1: tensordot's positional out resizes an input to the outer product.
# line-of: tensordot
import torch

def merge(task_vectors):
    flat = task_vectors[0].flatten()
    torch.tensordot(flat, flat, 0, task_vectors[2])
    return torch.stack(task_vectors).mean(dim=0)
