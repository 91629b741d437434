"""Bubble sort: the demo program. Step forward to watch neighbours swap, then step backward to find the
exact moment a value moved; `swapped` ends each pass early once the list is sorted.
"""


def bubble_sort(items):
    items = list(items)
    n = len(items)
    for end in range(n - 1, 0, -1):
        swapped = False
        for i in range(end):
            if items[i] > items[i + 1]:
                items[i], items[i + 1] = items[i + 1], items[i]
                swapped = True
        if not swapped:
            break
    return items


def main():
    data = [5, 1, 4, 2, 8, 3]
    result = bubble_sort(data)
    print("before:", data)
    print("after: ", result)


if __name__ == "__main__":
    main()
