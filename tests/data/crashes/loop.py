"""A loop whose parse() raises ValueError on the third row."""


def parse(r):
    text = r.strip()
    return int(text)


rows = ["1", " 2", "x", "4"]
out = []
for r in rows:
    out.append(parse(r))
print(out)
