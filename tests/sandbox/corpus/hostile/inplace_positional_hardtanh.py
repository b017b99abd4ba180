# expect: policy
# Class 1: hardtanh(input, min_val, max_val, inplace) by position.
import torch.nn.functional as F

def merge(task_vectors):
    return F.hardtanh(task_vectors[2], -1.0, 1.0, True)
