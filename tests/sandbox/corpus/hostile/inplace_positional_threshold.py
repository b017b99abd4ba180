# expect: policy
# Class 1: threshold(input, threshold, value, inplace) by position.
import torch.nn.functional as F

def merge(task_vectors):
    return F.threshold(task_vectors[0], 0.0, 0.0, True)
