# ruff: noqa: RUF001 - the Chinese pages use full-width punctuation, as Chinese text does
"""The topics of the generated retrieval corpus: one file each, so each query has one answer.

Each card is a short handbook page on a topic of its own (cooking, cars, astronomy, servers,
taxes), in English unless its path says otherwise. Some hold an identifier (a snake_case
setting, an error code) that the keyword queries ask for by name; the filler files that
`corpus.py` adds hold near-misses of them (same prefix, other digits or words).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CARDS", "Card"]


@dataclass(frozen=True)
class Card:
    """A topic page: its path in the corpus, title, and sections (heading, paragraph)."""

    path: str
    title: str
    sections: tuple[tuple[str, str], ...]


def _card(path: str, title: str, *sections: tuple[str, str]) -> Card:
    return Card(path, title, sections)


CARDS: tuple[Card, ...] = (
    _card(
        "kitchen/sourdough-starter.md",
        "Keeping a sourdough starter alive",
        (
            "Feeding",
            "Discard all but 50 grams of the starter, then add 50 grams of flour and 50 grams"
            " of water. A starter fed at room temperature needs this every 12 hours; one kept"
            " in the fridge can wait a week between feeds.",
        ),
        (
            "Signs of trouble",
            "A grey liquid on top is hooch, a sign of hunger, not of spoilage: stir it in or"
            " pour it off. Pink or orange streaks mean bacteria have taken over, and the jar"
            " should be thrown out.",
        ),
    ),
    _card(
        "kitchen/espresso-extraction.md",
        "Dialling in espresso",
        (
            "Grind size",
            "Aim for 36 grams of liquid from 18 grams of ground coffee in 25 to 30 seconds."
            " A shot that runs fast and tastes sour needs a finer grind; one that drips and"
            " tastes bitter needs a coarser grind.",
        ),
        (
            "Machine codes",
            "On the Brava 2 machine, code E-61 means the boiler did not reach brewing"
            " temperature; descale it and let it heat for 20 minutes.",
        ),
    ),
    _card(
        "kitchen/kimchi-fermentation.md",
        "Fermenting napa cabbage kimchi",
        (
            "Salting",
            "Quarter the napa cabbage and rub coarse sea salt between the leaves. After two"
            " hours, rinse three times and squeeze the leaves dry before adding the chili"
            " paste of gochugaru, garlic, ginger and fish sauce.",
        ),
        (
            "Ripening",
            "Leave the jar at room temperature for one or two days until it bubbles and smells"
            " sour, then move it to the fridge, where it keeps souring slowly for months.",
        ),
    ),
    _card(
        "kitchen/cheese-aging.md",
        "Aging hard cheese at home",
        (
            "The cave",
            "A wine fridge held at 12 degrees Celsius and 85 percent humidity works as a"
            " cheese cave. Flip each wheel daily for the first two weeks so the moisture"
            " spreads evenly through the paste.",
        ),
        (
            "Rinds",
            "Brush off blue or grey mould with brine. Wax the wheel only after the rind has"
            " dried for a few days, or moisture trapped below the wax will rot it.",
        ),
    ),
    _card(
        "kitchen/wine-decanting.md",
        "When to decant a wine",
        (
            "Young reds",
            "Tannic young reds such as Barolo or Cabernet Sauvignon soften after an hour in a"
            " wide decanter, as air reaches more of the wine.",
        ),
        (
            "Old bottles",
            "Stand an old bottle upright for a day so the sediment settles, then pour it slowly"
            " over a candle or torch and stop when the dregs reach the neck.",
        ),
    ),
    _card(
        "garden/root-rot.md",
        "Rescuing an overwatered houseplant",
        (
            "Symptoms",
            "Yellow lower leaves, a wilting plant in wet soil and a sour smell from the pot"
            " point to root rot. Healthy roots are white and firm; rotten ones are brown and"
            " mushy.",
        ),
        (
            "Treatment",
            "Lift the plant out, cut every mushy root with clean scissors, and repot it in"
            " fresh, dry mix in a pot with drainage holes. Water again only when the top"
            " three centimetres of soil are dry.",
        ),
    ),
    _card(
        "garden/composting.md",
        "Balancing a compost heap",
        (
            "Greens and browns",
            "Mix roughly three parts of carbon-rich browns (dry leaves, cardboard, straw) to"
            " one part of nitrogen-rich greens (grass clippings, vegetable peelings). Too many"
            " greens make a slimy heap that smells of ammonia.",
        ),
        (
            "Turning",
            "Turn the heap every two weeks to let air in; a hot heap reaches 60 degrees and"
            " kills most weed seeds.",
        ),
    ),
    _card(
        "garden/beekeeping-swarms.md",
        "Preventing a honeybee swarm",
        (
            "Queen cells",
            "Inspect the brood frames every seven days in late spring. Peanut-shaped queen"
            " cells hanging from the bottom edge of a frame mean the colony is preparing to"
            " swarm.",
        ),
        (
            "Making room",
            "Add a super before the hive gets crowded, or split the colony: move the old"
            " queen with a few frames to a new box, leaving the queen cells behind.",
        ),
    ),
    _card(
        "garden/rainwater-harvesting.md",
        "Collecting rainwater from a roof",
        (
            "Sizing the tank",
            "Each millimetre of rain on a square metre of roof yields one litre. A roof of 100"
            " square metres in a climate with 600 millimetres a year can fill 60,000 litres.",
        ),
        (
            "First flush",
            "Fit a first-flush diverter so the dirtiest water, which washes bird droppings and"
            " dust off the roof, never reaches the barrel.",
        ),
    ),
    _card(
        "garden/gutter-cleaning.md",
        "Clearing blocked gutters",
        (
            "When",
            "Clear gutters in late autumn after the leaves have fallen and again in spring."
            " Water spilling over the edge during rain, or plants sprouting in the trough,"
            " means a downpipe is blocked.",
        ),
        (
            "How",
            "Scoop the debris from a ladder with a stand-off bracket, then flush the downpipe"
            " with a garden hose from the top.",
        ),
    ),
    _card(
        "vehicles/tire-pressure.md",
        "Checking tyre pressure",
        (
            "Cold readings",
            "Measure pressure before driving, when the tyres are cold; the right figure is on"
            " a sticker inside the driver's door, not the maximum moulded on the sidewall.",
        ),
        (
            "Warning light",
            "The TPMS lamp with code C1234 on the dashboard means one sensor reads at least 25"
            " percent below its target. Inflate all four and drive ten minutes to clear it.",
        ),
    ),
    _card(
        "vehicles/bicycle-chain.md",
        "Cleaning and oiling a bicycle chain",
        (
            "Degreasing",
            "Scrub the chain with a brush and degreaser while backpedalling, rinse it, and let"
            " it dry completely before lubricating.",
        ),
        (
            "Lubricating",
            "Put one drop of lube on every roller, spin the cranks for a minute, then wipe the"
            " outside of the chain with a rag so it does not collect grit.",
        ),
    ),
    _card(
        "vehicles/winter-driving.md",
        "Driving on snow and ice",
        (
            "Braking",
            "Brake gently and early. With anti-lock brakes, press firmly and steer; the pedal"
            " pulses, which is normal. Leave eight seconds of distance to the car ahead.",
        ),
        (
            "Skids",
            "If the rear slides out, look and steer where you want to go and ease off the"
            " accelerator; never stamp on the brake in a skid.",
        ),
    ),
    _card(
        "outdoors/bowline-knot.md",
        "Tying a bowline",
        (
            "Steps",
            "Make a small loop in the standing part, pass the working end up through it,"
            " around behind the standing part, and back down through the loop.",
        ),
        (
            "Uses",
            "The bowline makes a fixed loop that does not slip or jam, so sailors use it to"
            " tie a mooring line to a ring and untie it easily after a load.",
        ),
    ),
    _card(
        "outdoors/water-purification.md",
        "Making stream water safe to drink",
        (
            "Boiling",
            "A rolling boil for one minute kills bacteria, viruses and protozoa; above 2,000"
            " metres of altitude, boil for three minutes.",
        ),
        (
            "Filters and tablets",
            "A hollow-fibre filter removes giardia and cryptosporidium but not viruses."
            " Chlorine dioxide tablets need 30 minutes, or four hours against cryptosporidium.",
        ),
    ),
    _card(
        "outdoors/fly-tying.md",
        "Tying a dry fly",
        (
            "Materials",
            "A dry fly floats on the surface: use stiff rooster hackle, a light wire hook in"
            " size 14 to 18, and a tail of a few hackle fibres.",
        ),
        (
            "Hackle",
            "Wind the hackle feather four or five turns in front of the wings, tie it off, and"
            " whip finish the head with a drop of varnish.",
        ),
    ),
    _card(
        "outdoors/bird-migration.md",
        "How migrating birds find their way",
        (
            "Compasses",
            "Songbirds read the earth's magnetic field through proteins in their eyes, and"
            " calibrate it against the sunset and the rotation of the stars around the pole.",
        ),
        (
            "Stopovers",
            "Most small migrants fly at night and rest and feed by day at stopover sites,"
            " doubling their body weight in fat before crossing deserts or the sea.",
        ),
    ),
    _card(
        "science/lunar-eclipse.md",
        "Watching a total lunar eclipse",
        (
            "Why the moon turns red",
            "During totality the moon lies in the earth's shadow, lit only by sunlight bent"
            " through our atmosphere, which scatters blue light away and leaves a copper red.",
        ),
        (
            "Observing",
            "No eye protection is needed. Binoculars show the shadow's curved edge creeping"
            " across the craters during the partial phases.",
        ),
    ),
    _card(
        "science/volcano-types.md",
        "Kinds of volcanic eruption",
        (
            "Effusive",
            "Hawaiian eruptions pour runny basalt lava that flows for kilometres and builds"
            " broad shield volcanoes with gentle slopes.",
        ),
        (
            "Explosive",
            "Plinian eruptions, like Vesuvius in 79 AD, blast columns of ash and pumice tens of"
            " kilometres high when gas-rich, sticky magma shatters.",
        ),
    ),
    _card(
        "science/aquarium-cycle.md",
        "Cycling a new aquarium",
        (
            "The nitrogen cycle",
            "Fish waste becomes ammonia, which bacteria turn into nitrite and then nitrate."
            " A new tank has none of these bacteria, so ammonia poisons the first fish.",
        ),
        (
            "Fishless cycling",
            "Dose pure ammonia daily and test the water; the tank is cycled when ammonia and"
            " nitrite both read zero within a day of dosing, which takes four to six weeks.",
        ),
    ),
    _card(
        "health/burn-first-aid.md",
        "First aid for a burn",
        (
            "Cooling",
            "Hold the burn under cool running water for twenty minutes. Do not use ice, butter"
            " or toothpaste; remove rings and watches before the skin swells.",
        ),
        (
            "Covering",
            "Cover it loosely with cling film or a clean plastic bag. Get medical help for"
            " burns larger than the casualty's hand or on the face, hands or genitals.",
        ),
    ),
    _card(
        "health/sleep-hygiene.md",
        "Sleeping better",
        (
            "Routine",
            "Get up at the same time every day, weekends included, and get daylight in the"
            " morning. Stop caffeine after midday.",
        ),
        (
            "In bed",
            "If you lie awake for more than twenty minutes, get up and read in dim light until"
            " drowsy; the bed should stay linked with sleep, not with worrying.",
        ),
    ),
    _card(
        "health/marathon-taper.md",
        "Tapering before a marathon",
        (
            "Volume",
            "Cut weekly mileage to about 75 percent three weeks before race day, 50 percent"
            " two weeks out and 30 percent in the final week, keeping a few short fast"
            " efforts so the legs stay sharp.",
        ),
        (
            "Carbohydrate loading",
            "Eat 8 to 10 grams of carbohydrate per kilogram of body weight on each of the last"
            " two days.",
        ),
    ),
    _card(
        "home/heat-pump.md",
        "Running a heat pump efficiently",
        (
            "Flow temperature",
            "An air-source heat pump is most efficient at a low flow temperature: 35 to 45"
            " degrees into large radiators or underfloor pipes, left running steadily rather"
            " than switched on and off.",
        ),
        (
            "Defrost",
            "In cold damp weather the outdoor unit ices up and runs a defrost cycle, steaming"
            " for a few minutes. Fault code HP-E7 means the defrost sensor has failed.",
        ),
    ),
    _card(
        "home/solar-inverter.md",
        "Solar inverter faults",
        (
            "Grid faults",
            "An inverter disconnects when the grid voltage leaves its allowed band. Fault F-227"
            " on the Sunreach 5K means grid overvoltage, common on sunny afternoons at the end"
            " of a long rural line.",
        ),
        (
            "Isolation faults",
            "An insulation resistance fault after rain usually means water in a rooftop"
            " connector; have an electrician test each string.",
        ),
    ),
    _card(
        "home/dovetail-joints.md",
        "Cutting dovetails by hand",
        (
            "Marking out",
            "Gauge the thickness of each board around the other's end. Mark the tails at a"
            " slope of 1 in 8 for hardwood or 1 in 6 for softwood with a sliding bevel.",
        ),
        (
            "Sawing and chopping",
            "Saw on the waste side of each line, then chop out the waste with a chisel from"
            " both faces so the shoulders stay crisp.",
        ),
    ),
    _card(
        "home/kiln-firing.md",
        "Firing a pottery kiln",
        (
            "Bisque",
            "Bisque ware slowly to 1000 degrees: hold at 100 degrees until the clay is bone"
            " dry, since trapped steam can blow a pot apart.",
        ),
        (
            "Controller errors",
            "Error Err-8 on a Skutt-style controller means the temperature rose too slowly,"
            " usually a worn element or relay.",
        ),
    ),
    _card(
        "money/home-office-deduction.md",
        "Deducting a home office",
        (
            "Who qualifies",
            "Self-employed people can deduct part of their housing costs for a room used"
            " regularly and only for work. Employees working from home usually cannot.",
        ),
        (
            "Simplified method",
            "Claim 5 dollars per square foot of office, up to 300 square feet, instead of"
            " apportioning rent, utilities and insurance.",
        ),
    ),
    _card(
        "money/refinancing.md",
        "Is refinancing a mortgage worth it",
        (
            "Break-even",
            "Divide the closing costs by the monthly saving to find how many months until the"
            " refinance pays for itself. If you will sell the house sooner, it does not pay.",
        ),
        (
            "Term",
            "Refinancing into a new 30-year loan lowers the payment but restarts the clock and"
            " can raise the total interest paid.",
        ),
    ),
    _card(
        "money/envelope-budgeting.md",
        "Envelope budgeting",
        (
            "The method",
            "On payday, split cash into envelopes labelled groceries, fuel, eating out and so"
            " on. When an envelope is empty, spending in that category stops until next month.",
        ),
        (
            "Digital envelopes",
            "Apps do the same with virtual categories; the rule that every dollar gets a job"
            " before the month begins stays the same.",
        ),
    ),
    _card(
        "arts/guitar-strings.md",
        "Restringing an acoustic guitar",
        (
            "Removing",
            "Slacken each string, pull the bridge pins with the notch in a string winder, and"
            " clean the fretboard while the strings are off.",
        ),
        (
            "Stretching",
            "New strings drift flat for a day. Pull each one gently away from the fretboard"
            " along its length and retune, three or four times.",
        ),
    ),
    _card(
        "arts/piano-scales.md",
        "Practising scales on the piano",
        (
            "Fingering",
            "In C major the right hand plays 1-2-3, tucks the thumb under onto F, then plays"
            " 1-2-3-4-5; the left hand mirrors it going down.",
        ),
        (
            "Tempo",
            "Practise with a metronome at a speed you can play evenly, and raise it by four"
            " beats a minute only after three clean runs.",
        ),
    ),
    _card(
        "arts/watercolor-paper.md",
        "Stretching watercolour paper",
        (
            "Soaking",
            "Soak the sheet in cold water for a few minutes, lay it on a board and smooth it"
            " from the middle outwards.",
        ),
        (
            "Taping",
            "Seal the edges with gummed brown tape and let it dry flat overnight; the paper"
            " dries drum-tight and will not cockle when washes are laid on it.",
        ),
    ),
    _card(
        "arts/long-exposure.md",
        "Long-exposure photography in daylight",
        (
            "Filters",
            "A ten-stop neutral density filter turns a 1/30 second exposure into about 30"
            " seconds, smoothing moving water into mist and clouds into streaks.",
        ),
        (
            "Setup",
            "Use a tripod, a remote release and manual focus set before the filter goes on;"
            " cover the viewfinder so stray light does not fog the frame.",
        ),
    ),
    _card(
        "arts/knitting-gauge.md",
        "Knitting a gauge swatch",
        (
            "Why",
            "A sweater knitted two stitches per ten centimetres off the pattern's tension ends"
            " up a whole size too big or too small.",
        ),
        (
            "How",
            "Knit a square of at least 15 centimetres, wash and dry it as the finished garment"
            " will be, then count stitches over the middle ten centimetres.",
        ),
    ),
    _card(
        "games/sicilian-defence.md",
        "The Sicilian Defence",
        (
            "Idea",
            "After 1.e4 c5 Black fights for the d4 square from the side, giving an unbalanced"
            " game where White often attacks the king and Black counterattacks on the"
            " queenside.",
        ),
        (
            "Najdorf",
            "The Najdorf variation, 5...a6, prepares ...e5 or ...b5 and was the favourite of"
            " Fischer and Kasparov.",
        ),
    ),
    _card(
        "learning/spaced-repetition.md",
        "Spaced repetition for vocabulary",
        (
            "Intervals",
            "Review a new card after one day, then three, seven, sixteen and thirty-five days;"
            " each successful recall roughly doubles the interval before the next.",
        ),
        (
            "Lapses",
            "A card you forget goes back to a short interval. Keep daily reviews to about"
            " twenty minutes so the backlog never grows faster than you clear it.",
        ),
    ),
    _card(
        "learning/dog-recall.md",
        "Teaching a dog to come when called",
        (
            "Start indoors",
            "Say the cue once in a happy voice and reward with something better than kibble"
            " the instant the dog reaches you. Never call the dog to punish it.",
        ),
        (
            "Long line",
            "Outdoors, use a ten-metre long line so a missed cue never becomes a game of chase.",
        ),
    ),
    _card(
        "servers/tls-renewal.md",
        "Renewing TLS certificates",
        (
            "Automatic renewal",
            "The certbot timer renews certificates 30 days before they expire. Set"
            " `renew_before_days` in the deploy hook's config to change that window.",
        ),
        (
            "Failures",
            "Error ACME-403 means the HTTP-01 challenge file could not be fetched: check that"
            " port 80 reaches the server and that /.well-known/acme-challenge is not"
            " redirected.",
        ),
    ),
    _card(
        "servers/btree-index.md",
        "When a database index helps",
        (
            "B-trees",
            "A B-tree index keeps keys sorted in pages, so a lookup reads a handful of pages"
            " instead of the whole table. Composite indexes serve queries on their leading"
            " columns only.",
        ),
        (
            "Costs",
            "Every index slows inserts and updates. Drop the unused ones that"
            " `pg_stat_user_indexes` shows with an `idx_scan` of zero.",
        ),
    ),
    _card(
        "servers/git-rebase.md",
        "Resolving conflicts during a git rebase",
        (
            "Continuing",
            "Edit the conflicted files, stage them with git add, and run git rebase --continue."
            " git rebase --abort returns the branch to where it was before.",
        ),
        (
            "Reusing resolutions",
            "Set `rerere.enabled` to true and git records how you resolved each conflict and"
            " replays it the next time the same hunk conflicts.",
        ),
    ),
    _card(
        "servers/dns-ttl.md",
        "Changing DNS records without downtime",
        (
            "Lower the TTL first",
            "A day before moving a site, lower the record's TTL to 300 seconds so resolvers"
            " stop caching the old address for long.",
        ),
        (
            "After the move",
            "Keep the old server answering until the old TTL has passed twice, then raise the"
            " TTL again to cut query load.",
        ),
    ),
    _card(
        "servers/pod-eviction.md",
        "Why Kubernetes evicts pods",
        (
            "Node pressure",
            "When a node runs low on memory or disk, the kubelet evicts pods, BestEffort ones"
            " first, then Burstable pods using more than they requested.",
        ),
        (
            "Preventing it",
            "Set memory requests equal to limits for critical pods to make them Guaranteed,"
            " and watch the `kube_pod_status_reason` metric for Evicted.",
        ),
    ),
    _card(
        "servers/spool-service.md",
        "The print spool service",
        (
            "Settings",
            "`spool_flush_interval` sets how often queued print jobs are written to disk;"
            " the default is 5 seconds. Raising it lowers disk writes but loses more jobs in"
            " a crash.",
        ),
        (
            "Errors",
            "SPL-E4410 means the spool directory is full; the service then refuses new jobs"
            " until old ones are purged.",
        ),
    ),
    _card(
        "servers/python-venv.md",
        "Python virtual environments",
        (
            "Creating one",
            "Run python -m venv .venv in the project folder and activate it with"
            " source .venv/bin/activate; pip then installs into that folder only.",
        ),
        (
            "Why",
            "Each project keeps its own package versions, so upgrading a library for one"
            " project never breaks another.",
        ),
    ),
    _card(
        "i18n/zh-tea.md",
        "绿茶的冲泡方法",
        (
            "水温",
            "冲泡绿茶的水温应在八十度左右，水太烫会把茶叶烫熟，使茶汤发苦。",
        ),
        (
            "时间",
            "第一泡浸泡一分钟即可出汤，之后每泡延长半分钟。",
        ),
    ),
    _card(
        "i18n/zh-subway.md",
        "乘坐地铁须知",
        (
            "购票",
            "可以在自动售票机购买单程票，也可以用手机扫码进站。",
        ),
        (
            "换乘",
            "换乘时请按照地面上的指示标志前往另一条线路的站台，高峰期请注意安全。",
        ),
    ),
    _card(
        "i18n/ja-onsen.md",
        "温泉の入り方",
        (
            "マナー",
            "湯船に入る前に体を洗い、タオルは湯に入れないでください。",
        ),
        (
            "注意",
            "長湯はのぼせの原因になるので、こまめに水分を補給しましょう。",
        ),
    ),
    _card(
        "i18n/fr-ski.md",
        "Préparer ses skis pour la saison",
        (
            "Fartage",
            "Avant la première sortie, appliquez un fart chaud adapté à la température de la"
            " neige, laissez refroidir une heure, puis raclez l'excédent.",
        ),
        (
            "Carres",
            "Affûtez les carres avec une lime et un guide d'angle à 88 degrés pour mieux"
            " accrocher sur la neige dure.",
        ),
    ),
    _card(
        "i18n/de-fahrrad.md",
        "Fahrradbremsen einstellen",
        (
            "Felgenbremsen",
            "Die Bremsbeläge sollen die Felge vorne zuerst berühren und zwei Millimeter Abstand"
            " haben; abgefahrene Beläge rechtzeitig tauschen.",
        ),
        (
            "Scheibenbremsen",
            "Schleift die Scheibe, den Sattel lösen, den Bremshebel ziehen und die Schrauben"
            " wieder anziehen.",
        ),
    ),
)
