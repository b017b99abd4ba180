# expect: policy
# Class 2: a lambda is a generator too when it yields.
make = lambda t: (yield t)

def merge(task_vectors):
    return next(make(task_vectors[0]))
