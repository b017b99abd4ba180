# expect: policy
# Class 5: dtype first is fine, the device index after it is not.
import torch

def merge(task_vectors):
    return task_vectors[0].to(torch.float32).to(1, torch.float32)
