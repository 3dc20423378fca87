"""Robustness variants of dev, in the spirit of Spider-Syn, Spider-Realistic and Spider-DK.

Each variant is a `Lexicon` that words the very same shape differently (same random stream, so the same SQL):
- `SynLexicon`: schema words (table and column phrasings) replaced by synonyms from `SYNONYMS`;
- `RealisticLexicon`: an equality condition whose value implies its column drops the column mention
  ("singers whose country is France" -> "singers from France"), as in Spider-Realistic;
- `DkLexicon`: a condition, superlative or MAX/MIN that needs a small piece of domain knowledge
  ("whose age is at least 18" -> "who are adults", "with the highest price" -> "most expensive",
  "the maximum price of products" -> "the price of the most expensive product").
Every change is recorded (`from`, `to`, `kind`) so the files can be audited and tests can check it.
"""

from __future__ import annotations

import re

from .domains import ColumnDef, TableDef
from .grammar import Lexicon, plural

# Synonyms by natural phrase. None contains the word it replaces, so "the schema word is gone" is checkable.
SYNONYMS: dict[str, str] = {
    # tables
    "account": "ledger", "actor": "performer", "agent": "broker", "airline": "carrier", "airport": "airfield",
    "animal": "creature", "appointment": "consultation", "article": "story", "artist": "painter",
    "artwork": "piece of art", "author": "writer", "band": "group", "band member": "group musician",
    "bike": "bicycle", "book": "volume", "booking": "reservation", "branch": "office", "candidate": "nominee",
    "car model": "vehicle type", "casting": "role", "chef": "cook", "cinema": "movie theater", "client": "patron",
    "club": "team", "concert": "show", "conductor": "maestro", "course": "class", "customer": "buyer",
    "department": "division", "device": "gadget", "district": "constituency", "doctor": "physician",
    "employee": "worker", "enrollment": "registration", "exam": "test", "faculty": "school division",
    "farm": "ranch", "farmer": "grower", "festival": "fair", "film": "picture", "flight": "air trip",
    "footballer": "soccer player", "game": "title release", "guest": "visitor", "harvest": "yield",
    "hotel": "inn", "instructor": "tutor", "journalist": "reporter", "keeper": "caretaker",
    "lab": "research institute", "lineup": "billing", "loan": "borrowing", "maker": "manufacturer", "match": "bout",
    "member": "subscriber", "movie": "motion picture", "museum": "gallery", "musician": "player of music",
    "newspaper": "daily paper", "orchestra": "ensemble", "order": "purchase", "order item": "line item",
    "owner": "guardian", "paper": "publication", "participant": "attendee", "party": "political group",
    "patient": "case", "performance": "appearance", "pet": "companion animal", "play record": "gaming log",
    "player": "competitor", "port": "harbour", "product": "item", "professor": "lecturer", "project": "initiative",
    "property": "real estate unit", "publisher": "label", "pupil": "young learner", "restaurant": "eatery",
    "review": "critique", "room": "chamber", "sale": "deal", "school": "academy", "scientist": "researcher",
    "screening": "showing", "session": "workout", "ship": "vessel", "singer": "vocalist", "stadium": "arena",
    "station": "dock site", "student": "learner", "studio": "atelier", "teacher": "educator",
    "technician": "engineer", "ticket": "support case", "tournament": "championship", "trainer": "coach",
    "transfer": "payment", "trip": "ride", "vet": "animal doctor", "viewing": "visit of a home",
    "visit": "checkup", "vote result": "ballot count", "voyage": "journey", "workshop": "seminar",
    "zoo": "animal park",
    # columns
    "age": "number of years", "country": "nation", "city": "town", "location": "place",
    "capacity": "maximum crowd", "price": "cost in euros", "salary": "pay", "year": "season",
    "gender": "sex", "weight": "mass", "height": "stature", "title": "heading", "rating": "grade score",
    "genre": "style", "color": "colour", "budget": "funding", "population": "inhabitants",
    "founded year": "year of foundation", "opening year": "inauguration year", "birth year": "year born",
    "duration": "running time", "attendance": "audience size", "score": "mark", "species": "kind of animal",
    "specialty": "field", "status": "state", "subject": "discipline", "level": "skill grade", "rank": "grade level",
    "weekday": "day of the week", "minutes": "length", "distance": "length of route",
    "release year": "year of release", "publication year": "year published", "pages": "page count",
    "area": "land size", "goals": "tally", "stars": "star rating", "fee": "charge", "cost": "expense",
    "citations": "times cited", "language": "tongue", "instrument": "musical tool", "horsepower": "engine power",
    "fuel": "power source", "theme": "motif", "medium": "technique", "platform": "system", "payment": "billing method",
    "concert name": "show title", "model name": "model title", "tonnage": "carrying capacity",
    "elevation": "altitude", "enrollment": "student body size", "votes": "ballots", "position": "role on the pitch",
    "playing hand": "dominant hand", "surface": "court type", "prize money": "purse", "credits": "credit points",
    "gpa": "grade average", "grade": "mark received", "number of staff": "staff count", "open year": "year opened",
    "years of work": "career length", "seats": "places", "cuisine": "type of food", "category": "product type",
}

# Columns whose value implies the column: the realistic wording of `whose <column> is <value>`.
IMPLIED: dict[str, str] = {
    "country": "from {v}", "city": "in {v}", "location": "in {v}", "gender": "that are {v}",
    "color": "that are {v}", "status": "that are {v}", "language": "written in {v}", "weekday": "on a {v}",
    "weather": "on a {v} day", "species": "that are a {v}", "instrument": "who play the {v}",
    "cuisine": "serving {v} food", "fuel": "running on {v}", "shift": "working the {v} shift",
    "playing hand": "that are {v}-handed", "sport": "who coach {v}", "rank": "at {v} rank",
    "level": "at {v} level", "genre": "playing {v}", "platform": "for {v}",
    "theme": "featuring {v}", "specialty": "practising {v}", "payment": "paid by {v}", "subject": "on {v}",
    "medium": "in {v}", "surface": "played on {v}",
    # names and titles: the value is a name, so "called X" says which column (Spider-Realistic drops "named")
    "name": "called {v}", "title": "called {v}", "model name": "called {v}", "pet name": "called {v}",
    "concert name": "called {v}", "project name": "called {v}", "building": "housed in {v}",
}

# Superlatives a reader resolves with world knowledge: (highest, lowest) of the column.
DK_SUPERLATIVE: dict[str, tuple[str, str]] = {
    "age": ("oldest", "youngest"), "price": ("most expensive", "cheapest"), "height": ("tallest", "shortest"),
    "weight": ("heaviest", "lightest"), "capacity": ("largest", "smallest"), "population": ("most populous",
    "least populous"), "salary": ("best paid", "worst paid"), "duration": ("longest", "shortest"),
    "area": ("largest", "smallest"), "pages": ("longest", "shortest"), "citations": ("most cited", "least cited"),
    "attendance": ("best attended", "least attended"), "distance": ("longest", "shortest"),
    "birth year": ("youngest", "oldest"), "founded year": ("newest", "oldest"), "opening year": ("newest", "oldest"),
    "release year": ("newest", "oldest"), "publication year": ("newest", "oldest"), "built year": ("newest", "oldest"),
    "tonnage": ("heaviest", "lightest"), "seats": ("largest", "smallest"), "stadium capacity": ("largest", "smallest"),
    "horsepower": ("most powerful", "least powerful"), "open year": ("newest", "oldest"),
    "budget": ("best funded", "least funded"), "goals": ("top scoring", "lowest scoring"),
    "rating": ("best rated", "worst rated"), "circulation": ("most widely read", "least read"),
    "tickets sold": ("best selling", "worst selling"), "votes": ("most voted", "least voted"),
    "days": ("longest", "shortest"), "minutes": ("longest", "shortest"), "stage minutes": ("longest", "shortest"),
    "enrollment": ("largest", "smallest"), "fee": ("most expensive", "cheapest"), "cost": ("most expensive",
    "cheapest"), "prize money": ("richest", "poorest"), "depth": ("deepest", "shallowest"),
    "docks": ("largest", "smallest"), "screens": ("largest", "smallest"), "words": ("longest", "shortest"),
    "h index": ("most influential", "least influential"), "rooms": ("largest", "smallest"),
    "years working": ("most experienced", "least experienced"), "years of work": ("most experienced",
    "least experienced"), "number of staff": ("largest", "smallest"), "formed year": ("newest", "oldest"),
    "installation year": ("newest", "oldest"), "purchase year": ("newest", "oldest"),
}
# Thresholds known without looking at the data: (column, operator, value) -> relative clause.
DK_THRESHOLD: dict[tuple[str, str, str], str] = {
    ("age", ">=", "18"): "who are adults",
    ("age", "<", "18"): "who are minors",
}


class SynLexicon(Lexicon):
    """Synonyms for table and column phrasings."""

    def _swap(self, base: str, natural: str, make) -> str:
        syn = SYNONYMS.get(natural)
        if syn is None:
            return base
        new = make(syn)
        self.changes.append({"kind": "synonym", "from": base, "to": new})
        return new

    def t(self, table: TableDef) -> str:
        return self._swap(table.natural, table.natural, lambda s: s)

    def T(self, table: TableDef) -> str:
        return self._swap(plural(table.natural), table.natural, plural)

    def c(self, col: ColumnDef) -> str:
        return self._swap(col.natural, col.natural, lambda s: s)


class RealisticLexicon(Lexicon):
    """Drops the column mention when the value says which column it is."""

    def cond(self, col: ColumnDef, op: str, value: str, owner: TableDef | None = None) -> str:
        base = super().cond(col, op, value, owner)
        form = IMPLIED.get(col.natural)
        if op != "=" or form is None:
            return base
        new = form.format(v=value)
        if owner:
            new = f"whose {self.t(owner)} is {new}"
        self.changes.append({"kind": "implied_column", "from": base, "to": new, "column": col.natural})
        return new


class DkLexicon(Lexicon):
    """Words a condition or a superlative so that answering needs a small piece of domain knowledge."""

    def cond(self, col: ColumnDef, op: str, value: str, owner: TableDef | None = None) -> str:
        base = super().cond(col, op, value, owner)
        new = DK_THRESHOLD.get((col.natural, op, value))
        if new is None or owner is not None:
            return base
        self.changes.append({"kind": "knowledge", "from": base, "to": new})
        return new

    def agg(self, func: str, col: ColumnDef, table: TableDef, link: str) -> str:
        """MAX/MIN of a column with a superlative: "maximum price of all products" -> "price of the most
        expensive product" (the reader must know that most expensive = highest price)."""
        base = super().agg(func, col, table, link)
        words = DK_SUPERLATIVE.get(col.natural)
        if words is None or func not in ("MAX", "MIN"):
            return base
        new = f"{self.c(col)} of the {words[0] if func == 'MAX' else words[1]} {self.t(table)}"
        self.changes.append({"kind": "knowledge", "from": base, "to": new})
        return new

    def sup(self, subject: str, col: ColumnDef, desc: bool, owner: TableDef | None = None) -> str:
        base = super().sup(subject, col, desc, owner)
        words = DK_SUPERLATIVE.get(col.natural)
        if words is None:
            return base
        word = words[0] if desc else words[1]
        if owner:
            new = f"{subject} whose {self.t(owner)} is the {word}"
        else:
            article, _, noun = subject.partition(" ")
            count = re.match(r"(two|three|five) (.*)", noun)
            new = f"{article} {count.group(1)} {word} {count.group(2)}" if count else f"{article} {word} {noun}"
        self.changes.append({"kind": "knowledge", "from": base, "to": new})
        return new


VARIANTS: dict[str, type[Lexicon]] = {"syn": SynLexicon, "realistic": RealisticLexicon, "dk": DkLexicon}
