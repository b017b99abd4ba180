# expect: policy
# Class 2: a generator whose finally makes another paused generator in a reference cycle, forever.
# line-of: yield
def arm():
    box = []
    def spin():
        try:
            yield box
        finally:
            while True:
                arm()
    g = spin()
    next(g)
    box.append(g)

def merge(task_vectors):
    arm()
    return task_vectors[0]
