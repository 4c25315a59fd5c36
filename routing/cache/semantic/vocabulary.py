"""The word lists the look-alike guard reads (guard.py): general English, written as data.

Nothing here is tuned to the labelled pairs in routing/cache/corpus/: each list is the
ordinary vocabulary of its kind (number words, units, antonym pairs, dates), so that a
question the guard has never seen is read the same way.
"""

from __future__ import annotations

# --- numbers --------------------------------------------------------------------------
UNITS_WORDS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15,
    "sixteen": 16, "seventeen": 17, "eighteen": 18, "nineteen": 19,
}
TENS_WORDS = {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
              "ninety": 90}
SCALE_WORDS = {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
ORDINAL_WORDS = {
    "first": 1, "second": 2, "third": 3, "fourth": 4, "fifth": 5, "sixth": 6, "seventh": 7, "eighth": 8,
    "ninth": 9, "tenth": 10, "eleventh": 11, "twelfth": 12, "twentieth": 20, "hundredth": 100,
}
OTHER_NUMBER_WORDS = {"dozen": 12, "couple": 2, "pair": 2, "twice": 2, "thrice": 3, "once": 1}
# Fractions in words ("a third" is the ordinal 3): "half of 350" is not "a quarter of 350".
FRACTION_WORDS = {"half": "0.5", "halves": "0.5", "quarter": "0.25", "quarters": "0.25"}
# "one" is a number in "one pound" but not in "which one", "one of", "from one server to another".
ONE_NOT_A_NUMBER_BEFORE = frozenset({"of", "another", "other", "more", "last", "by", "way", "thing", "day"})
ONE_NOT_A_NUMBER_AFTER = frozenset({"which", "this", "that", "the", "each", "any", "every", "no", "some", "a",
                                    "no", "another", "only", "someone", "anyone", "new", "right", "wrong"})
# Roman numerals after a name: "World War II", "Henry VIII" (single letters are too ambiguous).
ROMAN = {"ii": 2, "iii": 3, "iv": 4, "vi": 6, "vii": 7, "viii": 8, "ix": 9, "xi": 11, "xii": 12, "xiii": 13,
         "xiv": 14, "xv": 15, "xvi": 16, "xx": 20}

# --- units: every spelling -> one canonical name ----------------------------------------
_UNIT_SPELLINGS: dict[str, tuple[str, ...]] = {
    # length
    "millimetre": ("mm", "millimeter", "millimeters", "millimetre", "millimetres"),
    "centimetre": ("cm", "centimeter", "centimeters", "centimetre", "centimetres"),
    "metre": ("meter", "meters", "metre", "metres"),
    "kilometre": ("km", "kms", "kilometer", "kilometers", "kilometre", "kilometres"),
    "inch": ("inch", "inches"),
    "foot": ("ft", "foot", "feet"),
    "yard": ("yd", "yds", "yard", "yards"),
    "mile": ("mi", "mile", "miles"),
    "nautical_mile": ("nm",),
    # mass
    "milligram": ("mg", "milligram", "milligrams"),
    "gram": ("gram", "grams", "gramme", "grammes"),
    "kilogram": ("kg", "kgs", "kilo", "kilos", "kilogram", "kilograms"),
    "pound": ("lb", "lbs", "pound", "pounds", "gbp", "£"),  # mass or money: one name, still not euros
    "ounce": ("oz", "ounce", "ounces"),
    "ton": ("ton", "tons", "tonne", "tonnes"),
    "stone": ("stone", "stones"),
    # volume
    "millilitre": ("ml", "milliliter", "milliliters", "millilitre", "millilitres"),
    "litre": ("liter", "liters", "litre", "litres", "ltr"),
    "gallon": ("gal", "gallon", "gallons"),
    "pint": ("pint", "pints"),
    "quart": ("qt", "quart", "quarts"),
    "cup": ("cup", "cups"),
    "tablespoon": ("tbsp", "tbs", "tablespoon", "tablespoons"),
    "teaspoon": ("tsp", "teaspoon", "teaspoons"),
    # temperature
    "celsius": ("celsius", "centigrade", "°c", "ºc"),
    "fahrenheit": ("fahrenheit", "°f", "ºf"),
    "kelvin": ("kelvin",),
    # time
    "millisecond": ("ms", "millisecond", "milliseconds", "msec"),
    "second": ("sec", "secs", "second", "seconds"),
    "minute": ("min", "mins", "minute", "minutes"),
    "hour": ("hr", "hrs", "hour", "hours"),
    "day": ("day", "days"),
    "night": ("night", "nights"),
    "week": ("wk", "wks", "week", "weeks"),
    "month": ("mo", "month", "months"),
    "year": ("yr", "yrs", "year", "years"),
    "decade": ("decade", "decades"),
    "century": ("century", "centuries"),
    "am": ("am", "a.m."),
    "pm": ("pm", "p.m."),
    # data and rates
    "bit": ("bit", "bits"),
    "byte": ("byte", "bytes"),
    "kilobyte": ("kb", "kib", "kilobyte", "kilobytes"),
    "megabyte": ("mb", "mib", "megabyte", "megabytes"),
    "gigabyte": ("gb", "gib", "gigabyte", "gigabytes"),
    "terabyte": ("tb", "tib", "terabyte", "terabytes"),
    "kbps": ("kbps", "kbit/s", "kb/s"),
    "mbps": ("mbps", "mbit/s", "mb/s"),
    "gbps": ("gbps", "gbit/s", "gb/s"),
    "mph": ("mph",),
    "km_per_hour": ("km/h", "kmh", "kph", "kmph"),
    "metre_per_second": ("m/s",),
    "knot": ("knot", "knots"),
    # money
    "usd": ("usd", "$", "dollar", "dollars", "us$", "buck", "bucks"),
    "eur": ("eur", "€", "euro", "euros"),
    "jpy": ("jpy", "¥", "yen"),
    "inr": ("inr", "₹", "rupee", "rupees"),
    "cny": ("cny", "rmb", "yuan", "renminbi"),
    "chf": ("chf", "franc", "francs"),
    "cad": ("cad",),
    "aud": ("aud",),
    "cent": ("cent", "cents"),
    # other
    "percent": ("%", "percent", "per cent", "percentage", "pct"),
    "acre": ("acre", "acres"),
    "hectare": ("ha", "hectare", "hectares"),
    "calorie": ("cal", "kcal", "calorie", "calories"),
    "joule": ("joule", "joules", "kj"),
    "watt": ("w", "watt", "watts"),
    "kilowatt": ("kw", "kilowatt", "kilowatts"),
    "kilowatt_hour": ("kwh",),
    "volt": ("v", "volt", "volts"),
    "psi": ("psi",),
    "bar": ("bar",),
    "degree": ("degree", "degrees", "°", "º"),
}
# "square feet", "cubic metres": one unit of its own (the guard joins the two words).
AREA_PREFIXES = {"square": "square", "sq": "square", "cubic": "cubic", "cu": "cubic"}
UNITS: dict[str, str] = {spelling: name for name, spellings in _UNIT_SPELLINGS.items() for spelling in spellings}
# Spellings that are ordinary words too ("m", "s", "c", "bar", "am", "min", "World Cup", "second
# highest" ...): a unit only right after a number ("5 m", "10 s"), never on their own.
UNIT_ONLY_AFTER_NUMBER = frozenset({
    "m", "s", "h", "g", "l", "c", "f", "k", "w", "v", "ha", "mo", "nm", "bar", "min", "sec", "mi", "cal", "ms",
    "am", "pm", "stone", "stones", "cup", "cups", "pint", "pints", "bit", "bits", "night", "nights", "second",
})
# ... where "a", "an", "one", "per", "each" and "every" count as a number ("a cup", "per second").
COUNTS_AS_NUMBER = frozenset({"a", "an", "one", "per", "each", "every"})
# Letters glued to a number that name a unit: "5m", "10s", "7pm", "16GB", "20°C".
UNITS_AFTER_NUMBER_ONLY = {"m": "metre", "s": "second", "h": "hour", "g": "gram", "l": "litre", "c": "celsius",
                           "f": "fahrenheit", "k": "thousand"}

# --- negation -----------------------------------------------------------------------------
NEGATIONS = frozenset({
    "not", "no", "never", "none", "nobody", "nothing", "nowhere", "neither", "nor", "without", "cannot",
    "unable", "lacks", "lacking", "n't", "except", "impossible", "unlikely", "unsure",
})
# Prefixes that make an opposite ("install"/"uninstall", "legal"/"illegal", "eligible"/"ineligible").
NEGATING_PREFIXES = ("un", "in", "im", "il", "ir", "dis", "non", "de")
# Endings that mark an adjective before a noun (a modifier that narrows the question); words
# with these endings that are usually nouns are listed apart.
ADJECTIVE_ENDINGS = ("ent", "ant", "al", "ic", "ous", "ful", "less", "ive", "able", "ible", "ary")
NOT_ADJECTIVES = frozenset({
    "email", "account", "client", "agent", "tenant", "parent", "student", "content", "event", "payment",
    "rental", "portal", "manual", "total", "signal", "terminal", "hospital", "animal", "capital", "arrival",
    "approval", "renewal", "removal", "proposal", "referral", "withdrawal", "deposit", "plant", "restaurant",
    "assistant", "applicant", "accountant", "consultant", "merchant", "servant", "logic", "music", "topic",
    "clinic", "traffic", "graphic", "public", "basic", "library", "salary", "summary", "dictionary", "primary",
    "vocabulary", "itinerary", "archive", "executive", "relative", "objective", "incentive", "table", "cable",
    "variable", "bible", "current", "element", "statement", "department", "apartment", "document", "moment",
    "comment", "component", "environment", "equipment", "investment", "management", "government", "treatment",
    "appointment", "requirement", "settlement", "agreement", "employment", "retirement", "development",
    # adjectives that do not narrow what is asked ("a different language", "the actual value")
    "different", "specific", "particular", "actual", "general", "typical", "usual", "normal", "possible",
    "available", "recent", "relevant", "important", "efficient", "simple", "easiest", "quick", "proper",
    "official", "total", "given", "certain", "various", "several", "additional", "optional", "original",
})
# Prefixes that negate what follows their hyphen ("non-toxic", "non-smoking", "un-American").
HYPHEN_NEGATIONS = frozenset({"non", "un", "anti"})

# --- opposites: words of one group must agree (the same class) when both texts use it -----
# group -> classes; each class is a tuple of words (lower case; inflections are listed).
OPPOSITES: dict[str, tuple[tuple[str, ...], ...]] = {
    "size": (("big", "bigger", "biggest", "large", "larger", "largest", "huge", "major", "greater", "greatest"),
             ("small", "smaller", "smallest", "little", "tiny", "minor", "lesser")),
    "height": (("high", "higher", "highest", "tall", "taller", "tallest"), ("low", "lower", "lowest")),
    "length": (("long", "longer", "longest"), ("short", "shorter", "shortest")),
    "speed": (("fast", "faster", "fastest", "quick", "quicker", "quickest", "quickly", "rapid", "rapidly"),
              ("slow", "slower", "slowest", "slowly")),
    "price": (("expensive", "pricier", "priciest", "costly", "costlier"),
              ("cheap", "cheaper", "cheapest", "inexpensive", "affordable")),
    "age": (("old", "older", "oldest", "elder", "eldest"),
            ("young", "younger", "youngest", "new", "newer", "newest")),
    "width": (("wide", "wider", "widest", "broad", "broader"), ("narrow", "narrower", "narrowest")),
    "thickness": (("thick", "thicker", "thickest"), ("thin", "thinner", "thinnest")),
    "depth": (("deep", "deeper", "deepest"), ("shallow", "shallower", "shallowest")),
    "loudness": (("loud", "louder", "loudest", "noisy", "noisier"), ("quiet", "quieter", "quietest", "silent")),
    "brightness": (("bright", "brighter", "brightest", "light"), ("dark", "darker", "darkest", "dim", "dimmer")),
    "wetness": (("wet", "wetter", "damp", "humid"), ("dry", "drier", "driest")),
    "safety": (("safe", "safer", "safest"), ("dangerous", "risky", "riskier", "riskiest", "unsafe")),
    "wealth": (("rich", "richer", "richest", "wealthy", "wealthiest"), ("poor", "poorer", "poorest")),
    "fullness": (("full", "fuller"), ("empty", "emptier")),
    "cleanliness": (("clean", "cleaner", "cleanest"), ("dirty", "dirtier", "dirtiest")),
    "mood": (("happy", "happier", "happiest"), ("sad", "sadder", "saddest", "unhappy")),
    "rarity": (("common", "commonest", "frequent", "usual"), ("rare", "rarer", "rarest", "uncommon", "unusual")),
    "north_south": (("north", "northern", "northernmost"), ("south", "southern", "southernmost")),
    "east_west": (("east", "eastern", "easternmost"), ("west", "western", "westernmost")),
    "front_back": (("front",), ("back", "rear")),
    "parity": (("even",), ("odd",)),
    "seniority": (("senior", "lead", "principal", "head"), ("junior", "entry-level", "trainee", "intern")),
    "memory": (("remember", "remembered", "recall"), ("forget", "forgot", "forgotten")),
    "feeling": (("love", "loved", "adore"), ("hate", "hated", "dislike", "disliked")),
    "correctness": (("correct", "right", "accurate"), ("wrong", "incorrect", "inaccurate")),
    "travel": (("arrive", "arrived", "arrival", "arrivals", "inbound"),
               ("depart", "departed", "departure", "departures", "outbound")),
    "passage": (("enter", "entered", "entry", "entrance"), ("exit", "exited", "leave", "left")),
    "hiring": (("hire", "hired", "hiring", "recruit", "recruited"), ("fire", "fired", "firing", "dismiss",
                                                                        "dismissed")),
    "grade": (("upgrade", "upgraded", "upgrading"), ("downgrade", "downgraded", "downgrading")),
    "joining": (("merge", "merged", "merging", "combine", "combined", "join", "joined"),
                ("split", "splitting", "separate", "separated")),
    "primality": (("prime",), ("composite",)),
    "number_form": (("singular",), ("plural",)),
    "letter_case": (("uppercase", "upper-case", "capital", "capitals", "capitalised", "capitalized"),
                    ("lowercase", "lower-case")),
    "scope": (("global",), ("local",)),
    "timing": (("synchronous", "sync", "synchronously"), ("asynchronous", "async", "asynchronously")),
    "axis": (("horizontal", "horizontally"), ("vertical", "vertically")),
    "typing": (("static", "statically"), ("dynamic", "dynamically")),
    "flow": (("inbound", "incoming", "ingress"), ("outbound", "outgoing", "egress")),
    "tier": (("client", "frontend", "front-end"), ("server", "backend", "back-end")),
    "codec": (("encode", "encoded", "encoding", "serialize", "serialise"),
              ("decode", "decoded", "decoding", "deserialize", "deserialise")),
    # the two sides of a relationship: "can a landlord evict a tenant" asks about the landlord
    "tenancy": (("landlord", "lessor"), ("tenant", "renter", "lessee")),
    "employment": (("employer",), ("employee",)),
    "teaching": (("teacher", "tutor", "instructor", "professor", "lecturer"), ("student", "pupil", "learner")),
    "care": (("doctor", "physician", "clinician"), ("patient",)),
    "parentage": (("parent", "mother", "father", "mum", "mom", "dad"), ("child", "children", "son", "daughter")),
    "hosting": (("host",), ("guest", "visitor")),
    "litigation": (("plaintiff", "claimant", "prosecution", "prosecutor"), ("defendant", "defence", "defense")),
    "time": (("early", "earlier", "earliest", "before", "prior"), ("late", "later", "latest", "after")),
    "order": (("first",), ("last", "final")),
    "amount": (("more", "most", "greater", "greatest", "increase", "increased", "increasing", "raise", "rise", "rose", "risen",
                "rising", "grow", "grew", "growing", "gain", "gained", "plus", "soar", "soared", "surge",
                "surged", "spike", "spiked", "jump", "jumped", "climb", "climbed"),
               ("less", "least", "fewer", "fewest", "decrease", "decreased", "decreasing", "reduce", "reduced",
                "drop", "dropped", "dropping", "fall", "fell", "fallen", "falling", "decline", "declined",
                "declining", "shrink", "shrank", "minus", "crash", "crashed", "plunge", "plunged", "plummet",
                "plummeted", "tumble", "tumbled", "slump", "slumped")),
    "extreme": (("max", "maximum", "maximal", "maximise", "maximize", "upper"),
                ("min", "minimum", "minimal", "minimise", "minimize")),
    "distance": (("near", "nearer", "nearest", "closer", "closest"),
                 ("far", "farther", "farthest", "further", "furthest", "distant")),
    "heat": (("hot", "hotter", "hottest", "warm", "warmer", "warmest"),
             ("cold", "colder", "coldest", "cool", "cooler", "coolest")),
    "quality": (("good", "better", "best"), ("bad", "worse", "worst")),
    "strength": (("strong", "stronger", "strongest"), ("weak", "weaker", "weakest")),
    "difficulty": (("easy", "easier", "easiest", "simple", "simpler", "simplest"),
                   ("hard", "harder", "hardest", "difficult")),
    "weight": (("heavy", "heavier", "heaviest"), ("light", "lighter", "lightest")),
    "texture": (("hard", "harder", "hardest", "firm", "firmer"), ("soft", "softer", "softest")),
    "switch": (("enable", "enabled", "enabling", "activate", "activated"),
               ("disable", "disabled", "disabling", "deactivate", "deactivated")),
    "permission": (("allow", "allowed", "permit", "permitted", "accept", "accepted", "approve", "approved"),
                   ("deny", "denied", "forbid", "forbidden", "prohibit", "prohibited", "reject", "rejected",
                    "block", "blocked", "ban", "banned")),
    "presence": (("add", "added", "adding", "create", "created", "creating", "insert", "inserted", "include",
                  "included", "including", "attach", "attached"),
                 ("remove", "removed", "removing", "delete", "deleted", "deleting", "erase", "exclude",
                  "excluded", "excluding", "detach", "detached", "destroy")),
    "transfer": (("upload", "uploaded", "uploading"), ("download", "downloaded", "downloading")),
    "access": (("read", "reading"), ("write", "writing", "wrote", "written")),
    "direction_io": (("import", "imported", "importing", "input"), ("export", "exported", "exporting", "output")),
    "vcs": (("push", "pushed", "pushing"), ("pull", "pulled", "pulling")),
    "message": (("send", "sent", "sending", "sender"), ("receive", "received", "receiving", "recipient", "receiver")),
    "trade": (("buy", "bought", "buying", "purchase", "purchased", "buyer", "purchaser"),
              ("sell", "sold", "selling", "seller", "vendor")),
    "loan": (("lend", "lent", "lending", "lender"), ("borrow", "borrowed", "borrowing", "borrower")),
    "account": (("deposit", "deposited"), ("withdraw", "withdrew", "withdrawn", "withdrawal")),
    "crypto": (("encrypt", "encrypted", "encrypting", "encryption"),
               ("decrypt", "decrypted", "decrypting", "decryption")),
    "pack": (("compress", "compressed", "zip", "zipped"), ("decompress", "decompressed", "unzip", "unzipped")),
    "lock": (("lock", "locked", "locking"), ("unlock", "unlocked", "unlocking")),
    "link": (("connect", "connected", "connecting"), ("disconnect", "disconnected", "disconnecting")),
    "membership": (("subscribe", "subscribed", "join", "joined"), ("unsubscribe", "unsubscribed", "leave")),
    "session": (("login", "signin"), ("logout", "signout")),
    "run": (("start", "started", "starting", "begin", "began", "launch", "launched", "resume"),
            ("stop", "stopped", "stopping", "end", "ended", "finish", "finished", "pause", "paused", "halt")),
    "door": (("open", "opened", "opening", "reopen"), ("close", "closed", "closing", "shut")),
    "visibility": (("show", "shown", "showing", "display", "reveal", "unhide", "visible"),
                   ("hide", "hidden", "hiding", "invisible")),
    "outcome": (("win", "won", "winning", "pass", "passed", "succeed", "succeeded", "success"),
                ("lose", "lost", "losing", "fail", "failed", "failing", "failure")),
    "truth": (("true",), ("false",)),
    "sort": (("ascending", "asc"), ("descending", "desc")),
    "layout": (("expand", "expanded"), ("collapse", "collapsed")),
    "sound": (("mute", "muted"), ("unmute", "unmuted")),
    "inside": (("inside", "internal", "inner", "indoor", "indoors"),
               ("outside", "external", "outer", "outdoor", "outdoors")),
    "side": (("left",), ("right",)),
    "position": (("above", "over", "top"), ("below", "under", "bottom", "beneath")),
    "math": (("add", "plus", "sum"), ("subtract", "minus", "difference"),
             ("times", "multiply", "multiplied", "product"), ("divide", "divided", "quotient"),
             ("power", "raised", "exponent", "squared", "cubed"), ("root", "sqrt")),
    "sign": (("positive",), ("negative",)),
    "gender": (("male", "man", "men", "boy", "boys", "husband", "father", "son", "brother"),
               ("female", "woman", "women", "girl", "girls", "wife", "mother", "daughter", "sister")),
    "quantity_all": (("all", "every", "always"), ("some", "sometimes", "any")),
}
# Particles after the same verb that reverse it: "turn on"/"turn off", "log in"/"log out".
PARTICLE_OPPOSITES = (("on", "off"), ("in", "out"), ("up", "down"), ("into", "out"))
# Verbs of motion whose "up"/"down" is a rise or a fall: "prices went up" / "prices fell",
# "when did the wall go up" / "when did the wall come down".
RISE_FALL_VERBS = frozenset({"go", "goes", "went", "gone", "going", "come", "comes", "came", "coming", "shoot",
                             "shoots", "shot", "move", "moves", "moved", "climb", "climbs", "climbed"})
RISE_FALL_PARTICLES = {"up": "amount:0", "down": "amount:1"}

# --- dates and times: must be the same when either text names one -------------------------
MONTHS = {
    "january": 1, "jan": 1, "february": 2, "feb": 2, "march": 3, "april": 4, "apr": 4, "may": 5, "june": 6,
    "jun": 6, "july": 7, "jul": 7, "august": 8, "aug": 8, "september": 9, "sep": 9, "sept": 9,
    "october": 10, "oct": 10, "november": 11, "nov": 11, "december": 12, "dec": 12,
}
# Month spellings that are everyday words too: a month only next to a number ("May 5", "5 mar").
MONTHS_ONLY_NEXT_TO_NUMBER = frozenset({"may", "mar", "jan", "jun", "jul", "aug", "sep", "oct", "nov", "dec",
                                        "feb", "apr", "sept", "march"})
WEEKDAYS = {
    "monday": 1, "mon": 1, "tuesday": 2, "tue": 2, "tues": 2, "wednesday": 3, "wed": 3, "thursday": 4,
    "thu": 4, "thurs": 4, "friday": 5, "fri": 5, "saturday": 6, "sat": 6, "sunday": 7, "sun": 7,
}
WEEKDAYS_ONLY_CAPITALISED = frozenset({"mon", "tue", "tues", "wed", "thu", "thurs", "fri", "sat", "sun"})
DAY_WORDS = frozenset({"today", "tonight", "tomorrow", "yesterday", "morning", "afternoon",
                       "evening", "noon", "midday", "midnight", "weekend", "weekday", "weekdays", "weekends",
                       "overnight"})
SEASONS = frozenset({"spring", "summer", "autumn", "winter"})
# "next week", "last month", "this year": the relative word and the period together.
RELATIVE = frozenset({"this", "next", "last", "past", "previous", "coming", "current", "following"})
PERIODS = frozenset({"week", "weekend", "month", "year", "quarter", "decade", "century", "summer", "winter",
                     "autumn", "spring", "semester", "term", "season", "morning", "afternoon", "evening", "night",
                     "sprint", "release", "version"})
FREQUENCY = {"hourly": "hour", "daily": "day", "nightly": "night", "weekly": "week", "biweekly": "2week",
             "fortnightly": "2week", "monthly": "month", "quarterly": "quarter", "yearly": "year",
             "annual": "year", "annually": "year", "biannual": "halfyear", "semiannual": "halfyear"}

# --- words that carry no content of their own ----------------------------------------------
STOPWORDS = frozenset("""
a about above across actually after again against all almost along already also although always am among an
and another any anyone anything anyway anywhere are aren't around as ask asking at away
be because been before being between both but by
can could did do does doing done down during each either else enough especially etc even ever every exactly
for from get gets getting give given go goes going got gotten
had has have having he her here hers herself him himself his how however
i i'd i'll i'm i've if in into is it it's its itself just
kind know let let's like likely lot lots
make makes making may maybe me might mine more most much must my myself
need needs of off often oh ok okay on only onto or other others otherwise our ours ourselves out over own
per perhaps please possible pretty probably put
quite rather really regarding right
same say says should show so some somebody someone something sometimes somewhat soon still such sure
tell than thank thanks that that's the their theirs them themselves then there there's these they thing
things this those though through thus to too toward towards try trying
until up upon us use used using usually
very via want wants was way ways we we're we've well were what what's whatever when whenever where where's
whether which while who who's whom whose why will with within would
yes yet you you'd you're you've your yours yourself yourselves
hey hi hello hiya cheers sorry advance question quick morning afternoon evening dear one
thx thanx ty tia pls plz
explain describe tell show give calculate compute help define meaning mean means
""".split())
# Requests that are words of their own elsewhere: no content when they open a request ("List the
# planets", "Can you find ..."), content in a question ("how do I find duplicate rows", "reverse
# a list"): a request is one where every word before it in its sentence is a stop word and none
# of these opens a question.
COMMAND_WORDS = frozenset({"list", "find"})
QUESTION_OPENERS = frozenset({"how", "what", "what's", "where", "why", "when", "which", "who", "whom", "whose",
                              "whether", "if", "i", "we", "to"})
# "the best way to", "the right way to": another "how to", no content of their own.
MANNER_FILLERS = frozenset({"best", "good", "right", "proper", "correct", "recommended", "usual", "standard"})
MANNER_NOUNS = frozenset({"way", "ways", "method", "methods", "approach", "practice", "practices"})
# Words that open a condition narrowing a question once it has been asked ("how much caffeine is
# safe *during* pregnancy", "how much notice do I give *if* I quit *during* my probation"); at the
# start of a sentence they ask it ("When is ...", "If I ..."), so only after a content word.
# Prepositions that open a condition too when they come after the question's content words and
# bring content of their own ("the speed limit on autobahns *for trucks*", "bake cookies *at high
# altitude*"): a text that is the other plus such a phrase asks a narrower question.
PREPOSITION_OPENERS = frozenset({"for", "at", "on", "in", "with", "without", "under", "near", "inside", "outside"})
# Participles that carry a condition on ("purchases *made* during the holidays").
CONDITION_PARTICIPLES = frozenset({"made", "bought", "sold", "done", "taken", "given", "built", "written", "sent",
                                   "paid", "held", "kept", "left", "found", "seen", "used", "placed", "booked"})
# Prefixes and suffixes that turn a word into its opposite or its counterpart ("*pre*natal" /
# "*post*natal", "*hyper*tension" / "*hypo*tension", "state*less*" / "state*ful*"): two texts
# with the same rest of the word and another affix ask about different things.
OPPOSING_PREFIXES = ("pre", "post", "ante", "hyper", "hypo", "exo", "endo", "intra", "inter", "sub", "super",
                     "over", "under", "pro", "anti", "micro", "macro", "mono", "poly", "uni", "multi", "bi",
                     "in", "out", "up", "down")
OPPOSING_SUFFIXES = ("less", "ful")
CONDITION_OPENERS = frozenset({"during", "while", "when", "whenever", "if", "unless", "until", "except",
                               "before", "after", "once"})
# Adjectives that name a kind of the thing they qualify: said in one question only, it asks about
# that kind ("brown rice", "white wine", "frozen peas", "part-time job", "unpaid leave"). Not the
# vague ones ("new", "whole", "good"): "add a new user" asks what "add a user" asks.
KIND_WORDS = frozenset("""
white black brown red green yellow blue orange purple pink grey gray golden silver
raw cooked fresh frozen dried canned tinned smoked roasted fried boiled baked grilled steamed
skimmed skim organic decaf decaffeinated sparkling wholemeal wholegrain gluten-free vegan vegetarian
electric manual automatic diesel petrol wireless wired
used refurbished second-hand public private paid unpaid free premium basic
full-time part-time freelance temporary permanent remote hybrid
domestic international local national federal regional foreign
online offline mobile desktop
leading trailing missing existing remaining matching duplicate pending outstanding recurring upcoming
incoming outgoing unread archived deleted hidden empty blank nested
""".split())
# Before a kind word that is a stop word elsewhere ("I used it" / "a *used* car").
DETERMINERS = frozenset({"a", "an", "the", "my", "your", "our", "their", "his", "her", "its", "this", "that",
                         "these", "those", "some", "any"})
# Words that reverse an order ("sort a list" is ascending unless it says otherwise); "reverse" only
# in "reverse order" / "in reverse" (the verb "reverse a list" is an action of its own).
REVERSED_ORDER = frozenset({"descending", "desc", "backwards", "backward"})
# "mean" is a verb ("what does 404 mean", no content) but a noun after these ("the mean of 3, 5, 7").
MEAN_AS_NOUN_AFTER = frozenset({"the", "a", "an", "arithmetic", "geometric", "harmonic", "weighted"})
# Words that are capitalised only because a sentence starts with them: never a name.
SENTENCE_STARTERS = STOPWORDS | frozenset("""
what's how's where's who's can't don't doesn't isn't aren't won't wasn't weren't didn't shouldn't wouldn't couldn't
book reserve send set split convert translate write compare create delete remove add update change reset
check install uninstall enable disable open close start stop run read sort merge find get make list
generate schedule summarise summarize draft fix tell hey hi hello dear yes no is are was were do does did
should would could will can may might must shall have has had am be being been
""".split())

# --- the same thing said with another word (folded before two texts are compared) --------------
SYNONYMS: dict[str, str] = {
    "delete": "remove", "erase": "remove", "purchase": "buy", "automobile": "car", "vehicle": "car",
    "begin": "start", "commence": "start", "modify": "change", "alter": "change", "edit": "change",
    "update": "change", "repair": "fix", "solve": "fix", "resolve": "fix", "issue": "problem",
    "trouble": "problem", "error": "problem", "mistake": "problem", "quit": "exit", "terminate": "end",
    "finish": "end", "big": "large", "huge": "large", "little": "small", "tiny": "small", "photo": "picture",
    "image": "picture", "pic": "picture", "movie": "film", "reply": "answer", "respond": "answer",
    "sign-in": "login", "signin": "login", "logon": "login", "log-in": "login", "dict": "dictionary",
    "int": "integer", "app": "application", "doc": "document", "docs": "documentation", "repo": "repository",
    "config": "configuration", "info": "information", "pwd": "password", "passcode": "password",
    "email": "mail", "e-mail": "mail", "cellphone": "phone", "mobile": "phone", "smartphone": "phone",
    "laptop": "computer", "pc": "computer", "tv": "television", "kid": "child", "kids": "child",
    "children": "child", "people": "person", "persons": "person", "folks": "person", "job": "work",
    "employer": "company", "firm": "company", "salary": "pay", "wage": "pay", "paycheck": "pay",
    "payment": "pay", "paid": "pay", "cost": "price", "fee": "price", "charge": "price", "rapid": "fast",
    "quick": "fast", "quickly": "fast", "speedy": "fast", "tall": "high", "maximum": "max", "minimum": "min",
    "aeroplane": "plane", "airplane": "plane", "flight": "fly", "flying": "fly", "journey": "trip",
    "receive": "get", "obtain": "get", "acquire": "get", "parcel": "package", "shipment": "package",
    "delivery": "ship", "shipping": "ship", "deliver": "ship", "ok": "okay", "fine": "okay", "allowed": "allow",
    "permitted": "allow", "rules": "policy", "rule": "policy", "guideline": "policy", "reimbursement": "refund",
    "illness": "sick", "ill": "sick", "unwell": "sick", "physician": "doctor", "medicine": "medication",
    "drug": "medication", "pill": "medication", "attorney": "lawyer", "pupil": "student",
    "compute": "calculate", "average": "mean", "combine": "merge",
}
