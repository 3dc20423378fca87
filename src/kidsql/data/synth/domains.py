"""Hand-designed schemas and the word lists their rows are drawn from.

Each domain is written in a compact column language so that 32 schemas stay readable on a few screens:
``name:kind[:arg][=natural phrase]``, comma-separated. Kinds:

- ``id``: integer primary key; ``fk:<table>``: integer referencing that table's primary key;
- ``int:a-b``, ``real:a-b``, ``year:a-b`` (numbers), ``date:a-b`` (ISO dates between those years);
- ``person``, ``title``, ``company``, ``team``, ``place``, ``product``: unique text labels;
- any key of `POOLS`: a categorical text column drawn from that word list.

A table name may carry ``=natural`` too (``singer_in_concert=performance``). Natural phrasings default to the
identifier with underscores as spaces: they are what the questions say, and they go into `tables.json`.
Train and dev use disjoint domains (`DEV_DOMAINS`), as Spider's databases are disjoint across splits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

FIRST = (
    "Anna Ben Clara David Emma Felix Grace Henry Ida Jonas Karen Leo Maria Noah Olga Paul Rosa Sam Tara Victor "
    "Wendy Yusuf Zoe Adam Bella Carl Dina Eric Fiona Gustav Hanna Ivan Julia Kevin Lena Marco Nina Oscar Petra "
    "Quentin Rita Simon Tina Ulrich Vera Walter Xenia Yara Lukas Sofia Amir Chloe Diego Elena Farid Greta Hugo"
).split()
LAST = (
    "Smith Jones Miller Brown Garcia Martin Novak Schmidt Rossi Dubois Kowalski Silva Tanaka Kim Chen Patel "
    "Nielsen Berg Moreau Costa Fischer Weber Wagner Becker Hoffmann Lopez Murphy Kelly Walsh Ivanov Petrov "
    "Horvat Jensen Larsen Olsen Meyer Bauer Keller Vogel Lang Frank Hart Stone Wood Fox Reed Gray Lane Hale"
).split()
ADJ = (
    "Silent Golden Hidden Broken Bright Dark Lost Wild Quiet Crimson Frozen Secret Distant Little Northern "
    "Endless Velvet Silver Burning Gentle Hollow Lonely Rapid Savage Sunny Wicked Ancient Electric Royal Brave"
).split()
NOUN = (
    "River Garden Window Mountain Harbor Forest Mirror Shadow Island Bridge Valley Storm Lantern Castle Meadow "
    "Ocean Desert Tower Compass Feather Thunder Circle Voyage Dream Winter Summer Echo Horizon Falcon Anchor"
).split()
COMPANY_SUFFIX = "Ltd Group Inc Partners Works Systems Labs Trading".split()
PLACE_SUFFIX = "Hall Arena Center Park House Court Dome Plaza".split()
PRODUCT_NOUN = "Lamp Chair Kettle Blender Backpack Jacket Camera Speaker Helmet Bottle Clock Pillow Printer Drone".split()

POOLS: dict[str, list[str]] = {
    "city": "Berlin Paris Madrid Rome Vienna Prague Lisbon Dublin Oslo Warsaw Athens Zurich Munich Lyon Porto Bergen".split(),
    "country": "France Germany Spain Italy Austria Norway Sweden Poland Greece Ireland Portugal Japan Canada Brazil Chile".split(),
    "color": "red blue green black white yellow grey orange".split(),
    "gender": "female male".split(),
    "status": "active pending closed suspended".split(),
    "genre": "rock jazz pop blues folk classical metal soul".split(),
    "book_genre": "fantasy mystery romance history poetry science biography".split(),
    "movie_genre": "drama comedy horror action thriller documentary animation".split(),
    "cuisine": "Italian Chinese Mexican Indian French Thai Greek Turkish".split(),
    "sport": "football tennis hockey cycling rowing swimming basketball".split(),
    "subject": "mathematics physics chemistry biology history literature music art".split(),
    "department": "sales finance marketing research support logistics legal".split(),
    "category": "electronics furniture clothing toys garden kitchen sports books".split(),
    "language": "English German French Spanish Italian Japanese Dutch Polish".split(),
    "weekday": "Monday Tuesday Wednesday Thursday Friday Saturday Sunday".split(),
    "species": "dog cat rabbit parrot horse hamster turtle".split(),
    "breed": "Husky Poodle Beagle Boxer Collie Terrier Labrador".split(),
    "specialty": "cardiology neurology pediatrics surgery dermatology oncology".split(),
    "position": "goalkeeper defender midfielder forward".split(),
    "rank": "junior senior lead principal".split(),
    "instrument": "violin piano cello flute trumpet drums guitar".split(),
    "material": "wood steel glass plastic stone cotton".split(),
    "fuel": "petrol diesel electric hybrid".split(),
    "weather": "sunny rainy cloudy snowy windy".split(),
    "room_type": "single double suite family".split(),
    "payment": "cash card transfer voucher".split(),
    "level": "beginner intermediate advanced expert".split(),
    "crop": "wheat corn barley rice potato soy".split(),
    "cargo": "grain oil coal timber containers cars".split(),
    "medium": "oil watercolor bronze marble charcoal ink".split(),
    "platform": "console mobile desktop browser".split(),
    "faculty": "engineering medicine law science arts business".split(),
    "event_type": "concert lecture festival workshop exhibition".split(),
    "severity": "low medium high critical".split(),
    "shift": "morning evening night".split(),
    "hand": "left right".split(),
    "surface": "clay grass hard carpet".split(),
}


@dataclass(frozen=True)
class ColumnDef:
    name: str
    kind: str  # "id", "fk", "int", "real", "year", "date", a label kind, or a POOLS key
    arg: str = ""  # range "a-b" or the referenced table
    natural: str = ""

    @property
    def sql_type(self) -> str:
        """Declared SQLite type: what the prompt and `read_schema` see."""
        if self.kind in ("id", "fk", "int", "year"):
            return "INTEGER"
        if self.kind == "real":
            return "REAL"
        if self.kind == "date":
            return "DATE"
        return "TEXT"

    @property
    def spider_type(self) -> str:
        """Spider's `column_types` vocabulary: text / number / time."""
        return {"INTEGER": "number", "REAL": "number", "DATE": "time"}.get(self.sql_type, "text")

    @property
    def role(self) -> str:
        """How questions may use the column: key, label (unique text), category, number, date."""
        if self.kind in ("id", "fk"):
            return "key"
        if self.kind in LABEL_KINDS:
            return "label"
        if self.kind in POOLS:
            return "category"
        if self.kind == "date":
            return "date"
        return "number"

    @property
    def range(self) -> tuple[int, int]:
        lo, hi = self.arg.split("-")
        return int(lo), int(hi)


LABEL_KINDS = ("person", "title", "company", "team", "place", "product")


@dataclass
class TableDef:
    name: str
    columns: list[ColumnDef]
    natural: str = ""

    @property
    def pk(self) -> ColumnDef | None:
        return next((c for c in self.columns if c.kind == "id"), None)

    @property
    def is_junction(self) -> bool:
        return self.pk is None

    def by_role(self, role: str) -> list[ColumnDef]:
        return [c for c in self.columns if c.role == role]


@dataclass
class DomainDef:
    db_id: str
    tables: list[TableDef] = field(default_factory=list)

    def table(self, name: str) -> TableDef:
        return next(t for t in self.tables if t.name == name)

    def fks(self) -> list[tuple[TableDef, ColumnDef, TableDef]]:
        """(child table, fk column, parent table) for every foreign key."""
        return [(t, c, self.table(c.arg)) for t in self.tables for c in t.columns if c.kind == "fk"]


def _parse_column(spec: str) -> ColumnDef:
    spec, _, natural = spec.strip().partition("=")
    name, kind, *rest = spec.strip().split(":")
    return ColumnDef(name, kind, rest[0] if rest else "", natural.strip() or name.replace("_", " "))


def _domain(db_id: str, tables: dict[str, str]) -> DomainDef:
    out = []
    for key, cols in tables.items():
        name, _, natural = key.partition("=")
        out.append(TableDef(name, [_parse_column(c) for c in cols.split(",")], natural or name.replace("_", " ")))
    return DomainDef(db_id, out)


DOMAINS: list[DomainDef] = [
    _domain("concert_hall", {
        "stadium": "stadium_id:id, name:place, location:city, capacity:int:2000-80000, opening_year:year:1950-2020",
        "singer": "singer_id:id, name:person, country:country, age:int:15-70, gender:gender",
        "concert": "concert_id:id, concert_name:title, theme:genre, year:year:2010-2024, stadium_id:fk:stadium",
        "singer_in_concert=performance": "concert_id:fk:concert, singer_id:fk:singer",
    }),
    _domain("pet_clinic", {
        "owner": "owner_id:id, name:person, city:city, age:int:12-85",
        "pet": "pet_id:id, pet_name:title=name, species:species, weight:real:1-60, age:int:1-18, owner_id:fk:owner",
        "vet": "vet_id:id, name:person, specialty:specialty, salary:int:30000-120000",
        "visit": "visit_id:id, pet_id:fk:pet, vet_id:fk:vet, visit_date:date:2019-2024, cost:real:20-900",
    }),
    _domain("car_dealer", {
        "maker": "maker_id:id, name:company, country:country, founded_year:year:1900-2010",
        "car_model": "model_id:id, model_name:title, fuel:fuel, price:int:9000-90000, horsepower:int:60-500, maker_id:fk:maker",
        "sale": "sale_id:id, model_id:fk:car_model, sale_date:date:2018-2024, payment:payment, discount:int:0-5000",
    }),
    _domain("airline", {
        "airline": "airline_id:id, name:company, country:country",
        "airport": "airport_id:id, name:place, city:city, elevation:int:0-2500",
        "flight": "flight_id:id, flight_number:int:100-9999, airline_id:fk:airline, airport_id:fk:airport=origin airport id, distance:int:200-9000, price:real:40-1500, departure_date:date:2022-2024",
    }),
    _domain("company_staff", {
        "department": "department_id:id, name:department, budget:int:50000-900000, floor:int:1-12",
        "employee": "employee_id:id, name:person, gender:gender, age:int:18-67, salary:int:25000-150000, hire_date:date:2000-2024, rank:rank, department_id:fk:department",
        "project": "project_id:id, project_name:title, budget:int:5000-400000, severity:severity=priority, department_id:fk:department",
    }),
    _domain("university", {
        "faculty_unit=faculty": "faculty_id:id, name:faculty, building:place, founded_year:year:1850-2010",
        "professor": "professor_id:id, name:person, age:int:30-72, rank:rank, faculty_id:fk:faculty_unit",
        "course": "course_id:id, title:title, subject:subject, credits:int:1-10, professor_id:fk:professor",
        "student": "student_id:id, name:person, age:int:16-40, country:country, gpa:real:1-4",
        "enrollment": "student_id:fk:student, course_id:fk:course, grade:int:1-100",
    }),
    _domain("museum", {
        "museum": "museum_id:id, name:place, city:city, open_year:year:1800-2020, num_of_staff:int:5-400=number of staff",
        "artist": "artist_id:id, name:person, country:country, birth_year:year:1850-1995",
        "artwork": "artwork_id:id, title:title, medium:medium, year:year:1880-2023, price:int:1000-900000, artist_id:fk:artist, museum_id:fk:museum",
    }),
    _domain("tennis_tour", {
        "player": "player_id:id, name:person, country:country, height:int:160-210, age:int:16-40, hand:hand=playing hand",
        "tournament": "tournament_id:id, name:title, city:city, surface:surface, prize_money:int:100000-5000000",
        "match_result=match": "match_id:id, tournament_id:fk:tournament, winner_id:fk:player, minutes:int:45-300, year:year:2015-2024",
    }),
    _domain("library", {
        "author": "author_id:id, name:person, country:country, birth_year:year:1900-1995",
        "book": "book_id:id, title:title, book_genre:book_genre=genre, pages:int:80-1200, publication_year:year:1950-2024, author_id:fk:author",
        "member": "member_id:id, name:person, age:int:8-90, city:city",
        "loan": "loan_id:id, book_id:fk:book, member_id:fk:member, loan_date:date:2020-2024, days:int:1-60",
    }),
    _domain("restaurant_guide", {
        "restaurant": "restaurant_id:id, name:place, cuisine:cuisine, city:city, rating:real:1-5, seats:int:10-250",
        "chef": "chef_id:id, name:person, country:country, age:int:20-70, restaurant_id:fk:restaurant",
        "review": "review_id:id, restaurant_id:fk:restaurant, score:int:1-10, review_date:date:2019-2024, weekday:weekday",
    }),
    _domain("hospital", {
        "doctor": "doctor_id:id, name:person, specialty:specialty, age:int:28-70, salary:int:60000-300000",
        "patient": "patient_id:id, name:person, gender:gender, age:int:0-95, city:city",
        "appointment": "appointment_id:id, patient_id:fk:patient, doctor_id:fk:doctor, appointment_date:date:2021-2024, severity:severity, fee:real:30-600",
    }),
    _domain("football_league", {
        "club": "club_id:id, name:team, city:city, founded_year:year:1870-2000, stadium_capacity:int:5000-90000",
        "footballer": "footballer_id:id, name:person, position:position, age:int:16-39, goals:int:0-40, salary:int:20000-900000, club_id:fk:club",
        "game": "game_id:id, home_club_id:fk:club=home club id, attendance:int:500-80000, game_date:date:2022-2024, weather:weather",
    }),
    _domain("hotel_chain", {
        "hotel": "hotel_id:id, name:place, city:city, stars:int:1-5, opening_year:year:1960-2022",
        "room": "room_id:id, hotel_id:fk:hotel, room_type:room_type, price:int:40-900, floor:int:0-20",
        "guest": "guest_id:id, name:person, country:country, age:int:18-90",
        "booking": "booking_id:id, room_id:fk:room, guest_id:fk:guest, nights:int:1-21, check_in:date:2022-2024, payment:payment",
    }),
    _domain("online_shop", {
        "customer": "customer_id:id, name:person, city:city, age:int:16-80, status:status",
        "product": "product_id:id, product_name:product, category:category, price:real:2-1500, stock:int:0-500",
        "purchase_order=order": "order_id:id, customer_id:fk:customer, order_date:date:2021-2024, payment:payment, total:real:5-3000",
        "order_item": "order_id:fk:purchase_order, product_id:fk:product, quantity:int:1-10",
    }),
    _domain("orchestra", {
        "conductor": "conductor_id:id, name:person, country:country, age:int:28-85, year_of_work:int:1-50=years of work",
        "orchestra": "orchestra_id:id, name:team, city:city, founded_year:year:1850-2015, conductor_id:fk:conductor",
        "musician": "musician_id:id, name:person, instrument:instrument, age:int:16-75, orchestra_id:fk:orchestra",
        "performance": "performance_id:id, orchestra_id:fk:orchestra, performance_date:date:2018-2024, attendance:int:100-3000",
    }),
    _domain("film_studio", {
        "studio": "studio_id:id, name:company, country:country, founded_year:year:1910-2015",
        "film": "film_id:id, title:title, movie_genre:movie_genre=genre, release_year:year:1970-2024, budget:int:1-300=budget in millions, duration:int:75-210, studio_id:fk:studio",
        "actor": "actor_id:id, name:person, gender:gender, age:int:8-85, country:country",
        "casting": "film_id:fk:film, actor_id:fk:actor, salary:int:10000-5000000",
    }),
    _domain("farm_census", {
        "farm": "farm_id:id, name:place, city:city, area:int:5-3000, founded_year:year:1850-2015",
        "farmer": "farmer_id:id, name:person, age:int:18-80, farm_id:fk:farm",
        "harvest": "harvest_id:id, farm_id:fk:farm, crop:crop, year:year:2015-2024, tons:real:1-900",
    }),
    _domain("shipping", {
        "port": "port_id:id, name:place, country:country, depth:real:5-25",
        "ship": "ship_id:id, name:title, cargo:cargo, tonnage:int:1000-200000, built_year:year:1970-2023, port_id:fk:port=home port id",
        "voyage": "voyage_id:id, ship_id:fk:ship, departure_date:date:2021-2024, days:int:1-60, weather:weather",
    }),
    _domain("gym_club", {
        "trainer": "trainer_id:id, name:person, sport:sport, age:int:20-60, salary:int:20000-90000",
        "member": "member_id:id, name:person, gender:gender, age:int:12-80, join_date:date:2015-2024, level:level, trainer_id:fk:trainer",
        "session": "session_id:id, member_id:fk:member, weekday:weekday, minutes:int:20-150, calories:int:100-1200",
    }),
    _domain("bank", {
        "branch": "branch_id:id, name:place, city:city, opening_year:year:1900-2020",
        "client": "client_id:id, name:person, age:int:18-95, city:city, status:status",
        "account": "account_id:id, client_id:fk:client, branch_id:fk:branch, balance:real:0-250000, opened_date:date:2000-2024",
        "transfer": "transfer_id:id, account_id:fk:account, amount:real:1-20000, transfer_date:date:2023-2024, payment:payment=method",
    }),
    _domain("video_games", {
        "publisher": "publisher_id:id, name:company, country:country, founded_year:year:1970-2020",
        "game": "game_id:id, title:title, platform:platform, release_year:year:1990-2024, price:real:0-80, rating:real:1-10, publisher_id:fk:publisher",
        "player": "player_id:id, name:person, age:int:8-70, country:country, level:level",
        "play_record": "player_id:fk:player, game_id:fk:game, hours:int:1-900",
    }),
    _domain("real_estate", {
        "agent": "agent_id:id, name:person, city:city, age:int:21-70, commission:real:1-6=commission rate",
        "property": "property_id:id, address:place, city:city, rooms:int:1-9, area:int:25-450, price:int:50000-2500000, built_year:year:1900-2023, agent_id:fk:agent",
        "viewing": "viewing_id:id, property_id:fk:property, viewing_date:date:2023-2024, visitors:int:1-30",
    }),
    _domain("school_district", {
        "school": "school_id:id, name:place, city:city, founded_year:year:1850-2015, enrollment:int:100-3000",
        "teacher": "teacher_id:id, name:person, subject:subject, age:int:23-67, salary:int:28000-90000, school_id:fk:school",
        "pupil": "pupil_id:id, name:person, age:int:5-19, gender:gender, school_id:fk:school",
        "exam": "exam_id:id, pupil_id:fk:pupil, subject:subject, score:int:0-100, exam_date:date:2022-2024",
    }),
    _domain("news_agency", {
        "journalist": "journalist_id:id, name:person, country:country, age:int:21-75, years_working:int:0-45=years working",
        "newspaper": "newspaper_id:id, name:company, language:language, founded_year:year:1850-2020, circulation:int:1000-900000",
        "article": "article_id:id, headline:title, journalist_id:fk:journalist, newspaper_id:fk:newspaper, words:int:150-5000, publish_date:date:2022-2024",
    }),
    _domain("cinema_chain", {
        "cinema": "cinema_id:id, name:place, city:city, screens:int:1-20, opening_year:year:1950-2023",
        "movie": "movie_id:id, title:title, movie_genre:movie_genre=genre, duration:int:70-200, release_year:year:1980-2024",
        "screening": "screening_id:id, cinema_id:fk:cinema, movie_id:fk:movie, weekday:weekday, price:real:4-25, tickets_sold:int:0-400",
    }),
    _domain("bike_sharing", {
        "station": "station_id:id, name:place, city:city, docks:int:5-60, installation_year:year:2008-2024",
        "bike": "bike_id:id, color:color, purchase_year:year:2010-2024, station_id:fk:station=home station id",
        "trip": "trip_id:id, bike_id:fk:bike, start_station_id:fk:station=start station id, duration:int:2-240, trip_date:date:2023-2024, weather:weather",
    }),
    _domain("concert_festival", {
        "festival": "festival_id:id, name:title, city:city, year:year:2005-2024, tickets_sold:int:500-90000",
        "band": "band_id:id, name:team, genre:genre, country:country, formed_year:year:1960-2022",
        "band_member": "member_id:id, name:person, instrument:instrument, age:int:15-80, band_id:fk:band",
        "lineup": "festival_id:fk:festival, band_id:fk:band, stage_minutes:int:20-150",
    }),
    _domain("research_lab", {
        "lab": "lab_id:id, name:place, faculty:faculty, budget:int:20000-5000000, founded_year:year:1950-2022",
        "scientist": "scientist_id:id, name:person, country:country, age:int:22-80, h_index:int:0-90=h index, lab_id:fk:lab",
        "paper": "paper_id:id, title:title, scientist_id:fk:scientist, citations:int:0-5000, year:year:2000-2024, language:language",
    }),
    _domain("zoo", {
        "zoo": "zoo_id:id, name:place, city:city, area:int:5-400, opening_year:year:1850-2020",
        "keeper": "keeper_id:id, name:person, age:int:18-70, shift:shift, zoo_id:fk:zoo",
        "animal": "animal_id:id, nickname:title=name, species:species, age:int:0-40, weight:real:0-900, zoo_id:fk:zoo, keeper_id:fk:keeper",
    }),
    _domain("it_helpdesk", {
        "technician": "technician_id:id, name:person, rank:rank, age:int:19-65, shift:shift",
        "device": "device_id:id, model:product, platform:platform, purchase_date:date:2016-2024, price:real:100-4000",
        "ticket": "ticket_id:id, device_id:fk:device, technician_id:fk:technician, severity:severity, opened_date:date:2023-2024, hours_spent:real:0-40=hours spent",
    }),
    _domain("election", {
        "party": "party_id:id, name:company, founded_year:year:1850-2020, color:color",
        "candidate": "candidate_id:id, name:person, gender:gender, age:int:18-90, party_id:fk:party",
        "district": "district_id:id, name:place, city:city, population:int:5000-900000",
        "vote_result": "candidate_id:fk:candidate, district_id:fk:district, votes:int:0-200000",
    }),
    _domain("art_school", {
        "studio_room=studio": "studio_id:id, name:place, floor:int:0-6, capacity:int:5-40",
        "instructor": "instructor_id:id, name:person, medium:medium=specialty medium, age:int:25-80, salary:int:25000-95000",
        "workshop": "workshop_id:id, title:title, instructor_id:fk:instructor, studio_id:fk:studio_room, level:level, fee:real:10-400, start_date:date:2022-2024",
        "participant": "participant_id:id, name:person, age:int:6-85, city:city, workshop_id:fk:workshop",
    }),
]

# Held-out domains for dev (and its robustness variants); everything else is train.
DEV_DOMAINS = (
    "concert_hall", "pet_clinic", "car_dealer", "orchestra", "museum", "tennis_tour", "school_district", "election",
)


def domain(db_id: str) -> DomainDef:
    return next(d for d in DOMAINS if d.db_id == db_id)
