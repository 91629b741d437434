"""Mutation through aliases: appending through a second name, a dict changed by a callee, a nested list
shared between containers, and a copy that is not shared. Node has no __repr__, so it shows up as
<Node object at 0x...>.
"""


class Node:
    def __init__(self, value):
        self.value = value
        self.children = []


def add_score(scores, name, points):
    scores[name] = scores.get(name, 0) + points


def grow(items):
    items.append(len(items))
    return items


first = [1, 2]
second = first
second.append(3)
print("first is second:", first is second, first)

scores = {"ann": 1}
add_score(scores, "ann", 4)
add_score(scores, "bob", 2)
print("scores:", scores)

inner = [0]
outer = [inner, inner]
outer[0].append(1)
copy = [list(part) for part in outer]
copy[1].append(2)
print("outer:", outer, "copy:", copy)

grown = grow(grow([]))
print("grown:", grown)

root = Node("root")
child = Node("child")
root.children.append(child)
child.value = child.value.upper()
print("tree:", root.value, [node.value for node in root.children])
