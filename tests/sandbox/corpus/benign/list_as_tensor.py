import torch


def merge(task_vectors):
    # torch functions take the list as the tensor stacked from it, as numpy takes a list of arrays.
    total = torch.sum(task_vectors, dim=0)
    spread = torch.std(task_vectors, dim=0)
    middle = torch.median(task_vectors, dim=0).values
    largest = torch.amax(torch.abs(task_vectors), dim=0)
    both = torch.cat(task_vectors)  # already takes a list: unchanged
    return torch.where(spread < largest, middle, total / len(task_vectors)) + 0.0 * both[: len(middle)].sum()
