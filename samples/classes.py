"""Classes: methods, a property with a setter, inheritance with super(), classmethod and staticmethod,
__repr__, and a dataclass. Shape.__repr__ needs attributes that __init__ has not set yet, so at the call
of __init__ `self` cannot be shown.
"""
from dataclasses import dataclass, field


class Shape:
    count = 0

    def __init__(self, name):
        self.name = name
        Shape.count += 1

    def area(self):
        return 0

    def describe(self):
        return f"{self.name} with area {self.area():.1f}"

    def __repr__(self):
        return f"{type(self).__name__}({self.name!r})"


class Rectangle(Shape):
    def __init__(self, width, height):
        super().__init__("rectangle")
        self.width = width
        self.height = height

    def area(self):
        return self.width * self.height

    @property
    def aspect(self):
        return self.width / self.height

    @aspect.setter
    def aspect(self, ratio):
        self.width = self.height * ratio

    @classmethod
    def square(cls, side):
        return cls(side, side)

    @staticmethod
    def unit():
        return "cm"


@dataclass
class Inventory:
    owner: str
    shapes: list = field(default_factory=list)

    def add(self, shape):
        self.shapes.append(shape)
        return len(self.shapes)


rect = Rectangle(4, 2)
print(rect.describe(), rect.aspect, Rectangle.unit())
rect.aspect = 3
print(rect.width, rect.area())
box = Rectangle.square(3)
inventory = Inventory("ada")
inventory.add(rect)
inventory.add(box)
print(inventory, Shape.count)
