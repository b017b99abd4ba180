# expect: policy
# Class 2: delegating generators defer code the same way.
# line-of: yield from
def inner(tvs):
    return tvs

def outer(tvs):
    yield from inner(tvs)

def merge(task_vectors):
    return list(outer(task_vectors))[0]
