"""The questions of the replayed Q&A workload, written by hand (no language model):
intents, each with the ways people ask it, and look-alikes that must not share an
answer with them.

Two shapes:

- `HAND`: one intent per entry, its phrasings listed (the first is the most common);
  an entry whose id ends in `~` followed by another id is a look-alike of that intent
  (a different number, name, negation or unit: a different question).
- `FAMILIES`: one template set, many intents (one per slot value): "What is the
  capital of {x}?" for thirty countries. Siblings are each other's look-alikes (they
  differ by one name or number); a value listed under `lookalikes` is marked as the
  look-alike of the value it was made from.

generate.py turns these into intents.jsonl (every phrasing labelled with its intent) and
the request stream; nothing here is random.
"""

from __future__ import annotations

# --- hand-written intents ------------------------------------------------------------
# (id, domain, [phrasings]); ids "a~b" are look-alikes of b.

HAND: list[tuple[str, str, list[str]]] = [
    # support: accounts and billing of a SaaS product
    ("support.reset-password", "support", [
        "How do I reset my password?",
        "I forgot my password, how can I reset it?",
        "how do i reset my password",
        "What's the way to change a forgotten password?",
        "Can you help me reset my login password?"]),
    ("support.change-email", "support", [
        "How do I change the email address on my account?",
        "Can I update the email I use to log in?",
        "I need to switch my account to a different email address. How?"]),
    ("support.cancel-subscription", "support", [
        "How do I cancel my subscription?",
        "I want to cancel my plan. Where do I do that?",
        "how to cancel subscription",
        "What are the steps to end my subscription?"]),
    ("support.pause-subscription~support.cancel-subscription", "support", [
        "Can I pause my subscription instead of cancelling it?",
        "Is it possible to pause my plan for a couple of months?"]),
    ("support.refund-policy", "support", [
        "What is your refund policy?",
        "Can I get a refund if I'm not happy?",
        "Do you offer refunds?",
        "How do refunds work?"]),
    ("support.refund-annual", "support", [
        "Can I get a refund on an annual plan?",
        "Is an annual subscription refundable?",
        "I paid for a year up front. Can I get my money back?"]),
    ("support.refund-monthly~support.refund-annual", "support", [
        "Can I get a refund on a monthly plan?",
        "Is a monthly subscription refundable?"]),
    ("support.download-invoice", "support", [
        "Where can I download my invoices?",
        "How do I get a copy of my invoice?",
        "I need a PDF of last month's invoice for accounting.",
        "where are my invoices"]),
    ("support.add-team-member", "support", [
        "How do I add a new member to my team?",
        "How can I invite a colleague to our workspace?",
        "What's the way to add users to my team account?"]),
    ("support.remove-team-member~support.add-team-member", "support", [
        "How do I remove a member from my team?",
        "How can I take a colleague out of our workspace?"]),
    ("support.delete-account", "support", [
        "How do I delete my account?",
        "I want to permanently delete my account and all my data.",
        "Can you close my account for good?"]),
    ("support.update-card", "support", [
        "How do I update my credit card details?",
        "My card expired. How do I change the payment method?",
        "Where do I change the card you charge?",
        "update payment method"]),
    ("support.export-data", "support", [
        "How can I export all my data?",
        "Is there a way to download everything in my account as a file?",
        "Can I export my projects to CSV?"]),
    ("support.api-rate-limit", "support", [
        "What are the API rate limits?",
        "How many API requests can I make per minute?",
        "Is there a limit on API calls?"]),
    ("support.api-rate-limit-enterprise~support.api-rate-limit", "support", [
        "What are the API rate limits on the Enterprise plan?",
        "How many API requests per minute does Enterprise allow?"]),
    ("support.change-plan", "support", [
        "How do I upgrade to a higher plan?",
        "I'd like to move to the Pro plan. How?",
        "Where can I upgrade my subscription?"]),
    ("support.downgrade-plan~support.change-plan", "support", [
        "How do I downgrade to a cheaper plan?",
        "I'd like to move down to the Basic plan. How?"]),
    ("support.student-discount", "support", [
        "Do you have a student discount?",
        "Is there a discount for students?",
        "Are there cheaper plans for students?"]),
    ("support.nonprofit-discount~support.student-discount", "support", [
        "Do you have a discount for non-profits?",
        "Is there a discount for charities?"]),
    ("support.data-location", "support", [
        "Where is my data stored?",
        "In which country are your servers located?",
        "Do you keep customer data in the EU?"]),
    ("support.contact-human", "support", [
        "How can I talk to a real person?",
        "Can I speak to a human agent?",
        "I need to contact support by phone. Is that possible?"]),
    ("support.login-loop", "support", [
        "I keep getting logged out. What should I do?",
        "Why does the app log me out every few minutes?",
        "The site keeps signing me out."]),
    ("support.verification-email", "support", [
        "I didn't receive the verification email.",
        "The confirmation email never arrived. What now?",
        "Where is my account verification email?"]),
    ("support.free-trial-length", "support", [
        "How long is the free trial?",
        "How many days does the free trial last?",
        "What's the length of the trial period?"]),
    ("support.trial-card~support.free-trial-length", "support", [
        "Do I need a credit card for the free trial?",
        "Can I start the trial without entering a card?"]),
    ("support.transfer-ownership", "support", [
        "How do I transfer ownership of the workspace to someone else?",
        "Can I make another user the owner of our account?"]),
    ("support.vat-invoice", "support", [
        "How do I add my VAT number to invoices?",
        "Can you put our company's VAT ID on the invoice?"]),
    ("support.mobile-app", "support", [
        "Is there a mobile app?",
        "Do you have an app for iPhone and Android?",
        "Can I use this on my phone?"]),
    ("support.offline-mode", "support", [
        "Does the app work offline?",
        "Can I use it without an internet connection?"]),
    ("support.sso-setup", "support", [
        "How do I set up single sign-on with Okta?",
        "Can we log in through Okta SSO?"]),
    ("support.sso-azure~support.sso-setup", "support", [
        "How do I set up single sign-on with Azure AD?",
        "Can we log in through Microsoft Entra SSO?"]),
    ("support.charged-twice", "support", [
        "I was charged twice this month.",
        "Why do I see two charges on my card?",
        "You billed me twice, please fix it."]),
    ("support.not-charged~support.charged-twice", "support", [
        "I wasn't charged this month. Is my subscription still active?",
        "Why didn't my card get charged this month?"]),
    # coding
    ("coding.git-undo-commit", "coding", [
        "How do I undo my last git commit?",
        "How can I revert the most recent commit in git?",
        "git undo last commit",
        "I committed by mistake. How do I take the commit back?",
        "What's the command to undo the last commit but keep my changes?"]),
    ("coding.git-undo-push~coding.git-undo-commit", "coding", [
        "How do I undo a git commit that I already pushed?",
        "How can I revert a commit that is already on the remote?"]),
    ("coding.git-rename-branch", "coding", [
        "How do I rename a git branch?",
        "What's the command to rename my local branch?",
        "git rename branch"]),
    ("coding.git-delete-branch~coding.git-rename-branch", "coding", [
        "How do I delete a git branch?",
        "What's the command to delete my local branch?"]),
    ("coding.git-merge-vs-rebase", "coding", [
        "What is the difference between git merge and git rebase?",
        "Should I use merge or rebase?",
        "merge vs rebase in git, what's the difference?"]),
    ("coding.git-stash", "coding", [
        "What does git stash do?",
        "How do I temporarily save my changes without committing?",
        "How do I use git stash?"]),
    ("coding.list-vs-tuple", "coding", [
        "What is the difference between a list and a tuple in Python?",
        "Python: list vs tuple?",
        "When should I use a tuple instead of a list?"]),
    ("coding.list-vs-set~coding.list-vs-tuple", "coding", [
        "What is the difference between a list and a set in Python?",
        "Python: list vs set?"]),
    ("coding.js-closure", "coding", [
        "What is a closure in JavaScript?",
        "Can you explain JavaScript closures?",
        "How do closures work in JS?"]),
    ("coding.js-let-var", "coding", [
        "What's the difference between let and var in JavaScript?",
        "JavaScript: let vs var?",
        "Why should I use let instead of var?"]),
    ("coding.js-let-const~coding.js-let-var", "coding", [
        "What's the difference between let and const in JavaScript?",
        "JavaScript: let vs const?"]),
    ("coding.sql-joins", "coding", [
        "What is the difference between an inner join and a left join?",
        "Explain INNER JOIN vs LEFT JOIN in SQL.",
        "inner join vs left join"]),
    ("coding.sql-right-join~coding.sql-joins", "coding", [
        "What is the difference between a left join and a right join?",
        "Explain LEFT JOIN vs RIGHT JOIN in SQL."]),
    ("coding.sql-duplicates", "coding", [
        "How do I find duplicate rows in a SQL table?",
        "SQL query to find duplicates?",
        "How can I list rows that appear more than once in a table?"]),
    ("coding.sql-delete-duplicates~coding.sql-duplicates", "coding", [
        "How do I delete duplicate rows in a SQL table?",
        "SQL query to remove duplicates but keep one?"]),
    ("coding.http-404", "coding", [
        "What does HTTP status 404 mean?",
        "What is a 404 error?",
        "Why do I get a 404 Not Found?"]),
    ("coding.http-403~coding.http-404", "coding", [
        "What does HTTP status 403 mean?",
        "What is a 403 error?"]),
    ("coding.http-500~coding.http-404", "coding", [
        "What does HTTP status 500 mean?",
        "What is a 500 error?"]),
    ("coding.http-502~coding.http-500", "coding", [
        "What does HTTP status 502 mean?",
        "What is a 502 Bad Gateway error?"]),
    ("coding.python-venv", "coding", [
        "How do I create a virtual environment in Python?",
        "How to make a Python venv?",
        "What's the command to set up a virtualenv?"]),
    ("coding.docker-vs-vm", "coding", [
        "What's the difference between a Docker container and a virtual machine?",
        "Docker vs VM?",
        "How is a container different from a VM?"]),
    ("coding.regex-email", "coding", [
        "What's a regular expression to validate an email address?",
        "Regex for email validation?",
        "How do I check with a regex that a string is an email?"]),
    ("coding.big-o-binary-search", "coding", [
        "What is the time complexity of binary search?",
        "Big O of binary search?",
        "How fast is binary search in big-O terms?"]),
    ("coding.big-o-linear-search~coding.big-o-binary-search", "coding", [
        "What is the time complexity of linear search?",
        "Big O of linear search?"]),
    ("coding.rest-vs-graphql", "coding", [
        "What is the difference between REST and GraphQL?",
        "REST vs GraphQL, which should I use?",
        "How does GraphQL compare to a REST API?"]),
    ("coding.cors-error", "coding", [
        "How do I fix a CORS error?",
        "Why does my browser block the request with a CORS policy error?",
        "No 'Access-Control-Allow-Origin' header: what does it mean?"]),
    ("coding.python-async", "coding", [
        "How does async and await work in Python?",
        "Can you explain asyncio in simple terms?",
        "What does await do in Python?"]),
    ("coding.null-pointer", "coding", [
        "What is a NullPointerException in Java?",
        "Why do I get a NullPointerException?",
        "How do I fix a null pointer exception?"]),
    ("coding.tabs-spaces", "coding", [
        "Should I indent with tabs or spaces?",
        "Tabs or spaces for indentation?"]),
    ("coding.semver", "coding", [
        "What does semantic versioning mean?",
        "How does semver work: major, minor, patch?",
        "What do the three numbers in a version like 2.4.1 mean?"]),
    # HR
    ("hr.payday", "hr", [
        "When is payday?",
        "What day of the month do we get paid?",
        "When will my salary be paid this month?",
        "when do we get paid"]),
    ("hr.expense-claim", "hr", [
        "How do I submit an expense claim?",
        "How can I get reimbursed for a work expense?",
        "Where do I file my travel expenses?",
        "What's the process for expense reimbursement?"]),
    ("hr.expense-limit-meals~hr.expense-claim", "hr", [
        "What is the daily limit for meal expenses on business trips?",
        "How much can I spend on meals per day when travelling for work?"]),
    ("hr.remote-work", "hr", [
        "What is the remote work policy?",
        "How many days a week can I work from home?",
        "Can I work remotely?",
        "Is working from home allowed?"]),
    ("hr.remote-abroad~hr.remote-work", "hr", [
        "Can I work remotely from another country?",
        "Am I allowed to work from abroad for a few weeks?"]),
    ("hr.performance-review", "hr", [
        "When are performance reviews?",
        "How often do we have performance reviews?",
        "When is the next appraisal cycle?"]),
    ("hr.pension", "hr", [
        "How much does the company contribute to my pension?",
        "What is the employer pension contribution?",
        "Does the company match pension contributions?"]),
    ("hr.notice-period", "hr", [
        "What is my notice period if I resign?",
        "How much notice do I have to give when I quit?",
        "How long is the notice period?"]),
    ("hr.notice-period-probation~hr.notice-period", "hr", [
        "What is the notice period during probation?",
        "How much notice do I have to give if I quit during my probation?"]),
    ("hr.request-time-off", "hr", [
        "How do I request time off?",
        "Where do I book my holidays?",
        "What's the process for asking for leave?",
        "how to request vacation"]),
    ("hr.cancel-time-off~hr.request-time-off", "hr", [
        "How do I cancel time off I already booked?",
        "Can I withdraw a holiday request that was approved?"]),
    ("hr.carry-over-leave", "hr", [
        "Can I carry over unused vacation days to next year?",
        "Do unused holidays roll over?",
        "What happens to my leftover annual leave at the end of the year?"]),
    ("hr.cash-out-leave~hr.carry-over-leave", "hr", [
        "Can I get paid for unused vacation days?",
        "Can I cash out my leftover holidays?"]),
    ("hr.dress-code", "hr", [
        "Is there a dress code at the office?",
        "What should I wear to work?",
        "Do we have to wear formal clothes?"]),
    ("hr.payslip", "hr", [
        "Where can I find my payslip?",
        "How do I download my pay stub?",
        "Where are my salary statements?"]),
    ("hr.bank-details", "hr", [
        "How do I change the bank account my salary is paid into?",
        "I opened a new bank account. How do I update it for payroll?"]),
    ("hr.referral-bonus", "hr", [
        "Is there a bonus for referring a candidate?",
        "How does the employee referral programme work?",
        "Do I get anything if someone I refer gets hired?"]),
    ("hr.training-budget", "hr", [
        "Do we have a training budget?",
        "How much can I spend on courses and conferences?",
        "Is there money for professional development?"]),
    ("hr.sick-note", "hr", [
        "When do I need a doctor's note for sick leave?",
        "After how many sick days do I need a medical certificate?"]),
    ("hr.overtime", "hr", [
        "Do we get paid for overtime?",
        "How is overtime compensated?",
        "Is overtime paid or given back as time off?"]),
    ("hr.no-overtime~hr.overtime", "hr", [
        "Can I refuse to work overtime?",
        "Am I required to work overtime if my manager asks?"]),
    ("hr.health-insurance", "hr", [
        "Does the company provide health insurance?",
        "What health benefits do we have?",
        "Is private medical insurance included?"]),
    ("hr.health-insurance-family~hr.health-insurance", "hr", [
        "Can I add my family to the company health insurance?",
        "Does our medical insurance cover my partner and children?"]),
    # IT helpdesk
    ("it.vpn", "it", [
        "How do I connect to the VPN?",
        "I can't connect to the company VPN. What should I do?",
        "How to set up the VPN on my laptop?"]),
    ("it.wifi-guest", "it", [
        "What is the guest Wi-Fi password?",
        "How do visitors get on the Wi-Fi?",
        "guest wifi password?"]),
    ("it.printer", "it", [
        "How do I add the office printer to my laptop?",
        "My laptop can't find the printer.",
        "How do I print from my Mac at the office?"]),
    ("it.mfa-new-phone", "it", [
        "I got a new phone. How do I move my authenticator app?",
        "How do I set up two-factor authentication on a new phone?",
        "My MFA codes are on my old phone. What now?"]),
    ("it.laptop-slow", "it", [
        "My laptop is very slow. What can I do?",
        "Why is my computer so slow?",
        "How can I speed up my work laptop?"]),
    ("it.shared-drive", "it", [
        "How do I get access to the shared drive?",
        "Who can give me access to the team folder?",
        "I can't open the shared drive, it says access denied."]),
    ("it.software-install", "it", [
        "How do I install new software on my work laptop?",
        "Can I install apps myself or do I need IT?",
        "I need admin rights to install a program."]),
    ("it.phishing", "it", [
        "I think I got a phishing email. What should I do?",
        "How do I report a suspicious email?",
        "I clicked a link in a strange email, is that bad?"]),
    # everyday knowledge, health, finance, travel, cooking
    ("health.water-per-day", "health", [
        "How much water should I drink per day?",
        "How many litres of water a day is healthy?",
        "What's the recommended daily water intake?"]),
    ("health.sleep-adults", "health", [
        "How many hours of sleep do adults need?",
        "How much sleep does an adult need each night?",
        "What's a healthy amount of sleep for adults?"]),
    ("health.sleep-teens~health.sleep-adults", "health", [
        "How many hours of sleep do teenagers need?",
        "How much sleep does a teenager need each night?"]),
    ("health.steps-per-day", "health", [
        "How many steps a day should I walk?",
        "Is 10,000 steps a day really necessary?",
        "What's a good daily step count?"]),
    ("health.caffeine-limit", "health", [
        "How much caffeine is safe per day?",
        "How many cups of coffee a day is too much?",
        "What's the daily limit for caffeine?"]),
    ("health.caffeine-pregnancy~health.caffeine-limit", "health", [
        "How much caffeine is safe per day during pregnancy?",
        "How many cups of coffee a day can I have while pregnant?"]),
    ("finance.apr-apy", "finance", [
        "What is the difference between APR and APY?",
        "APR vs APY?",
        "How is APY different from APR?"]),
    ("finance.roth-ira", "finance", [
        "What is a Roth IRA?",
        "How does a Roth IRA work?",
        "Can you explain a Roth IRA simply?"]),
    ("finance.traditional-ira~finance.roth-ira", "finance", [
        "What is a traditional IRA?",
        "How does a traditional IRA work?"]),
    ("finance.index-fund", "finance", [
        "What is an index fund?",
        "How do index funds work?",
        "Why do people recommend index funds?"]),
    ("finance.compound-interest", "finance", [
        "How does compound interest work?",
        "Can you explain compound interest with an example?",
        "What is compound interest?"]),
    ("finance.simple-interest~finance.compound-interest", "finance", [
        "How does simple interest work?",
        "What is simple interest?"]),
    ("finance.emergency-fund", "finance", [
        "How big should my emergency fund be?",
        "How many months of expenses should I keep in savings?",
        "What's a good size for an emergency fund?"]),
    ("travel.carry-on-liquids", "travel", [
        "How much liquid can I take in my carry-on?",
        "What's the liquids limit for hand luggage?",
        "Can I bring a water bottle through airport security?"]),
    ("travel.passport-validity", "travel", [
        "How long does my passport need to be valid to travel?",
        "Do I need six months left on my passport?",
        "Passport validity rules for travel?"]),
    ("travel.jet-lag", "travel", [
        "How can I avoid jet lag?",
        "Any tips to get over jet lag quickly?",
        "What's the best way to deal with jet lag?"]),
    ("travel.tipping-usa", "travel", [
        "How much should I tip in restaurants in the US?",
        "What's the normal tip in an American restaurant?",
        "Tipping in the USA: how much?"]),
    ("travel.tipping-japan~travel.tipping-usa", "travel", [
        "How much should I tip in restaurants in Japan?",
        "Do people tip in Japan?"]),
    ("cooking.hard-boiled-egg", "cooking", [
        "How long should I boil an egg for a hard-boiled egg?",
        "How many minutes for a hard boiled egg?",
        "How long do you boil eggs to make them hard?"]),
    ("cooking.soft-boiled-egg~cooking.hard-boiled-egg", "cooking", [
        "How long should I boil an egg for a soft-boiled egg?",
        "How many minutes for a soft boiled egg?",
        "How long do you boil eggs for a runny yolk?"]),
    ("cooking.rice-ratio", "cooking", [
        "What is the water to rice ratio?",
        "How much water do I need for one cup of rice?",
        "How much water for rice?"]),
    ("cooking.brown-rice-ratio~cooking.rice-ratio", "cooking", [
        "What is the water to brown rice ratio?",
        "How much water do I need for one cup of brown rice?"]),
    ("cooking.substitute-eggs", "cooking", [
        "What can I use instead of eggs in baking?",
        "What's a good egg substitute for a cake?",
        "How do I bake without eggs?"]),
    ("cooking.substitute-butter~cooking.substitute-eggs", "cooking", [
        "What can I use instead of butter in baking?",
        "What's a good butter substitute for a cake?"]),
    ("cooking.chicken-temp", "cooking", [
        "What internal temperature should chicken be cooked to?",
        "At what temperature is chicken safe to eat?",
        "How hot should chicken be inside when it's done?"]),
    ("cooking.pork-temp~cooking.chicken-temp", "cooking", [
        "What internal temperature should pork be cooked to?",
        "At what temperature is pork safe to eat?"]),
    ("science.sky-blue", "science", [
        "Why is the sky blue?",
        "What makes the sky look blue?",
        "why is the sky blue"]),
    ("science.sunset-red~science.sky-blue", "science", [
        "Why are sunsets red?",
        "What makes the sky turn orange and red at sunset?"]),
    ("science.light-speed", "science", [
        "How fast does light travel?",
        "What is the speed of light?",
        "speed of light in km/s?"]),
    ("science.sound-speed~science.light-speed", "science", [
        "How fast does sound travel?",
        "What is the speed of sound?"]),
    ("science.photosynthesis", "science", [
        "How does photosynthesis work?",
        "Can you explain photosynthesis simply?",
        "What happens during photosynthesis?"]),
    ("science.dogs-chocolate", "science", [
        "Why is chocolate bad for dogs?",
        "Can dogs eat chocolate?",
        "Is chocolate poisonous to dogs?"]),
    ("science.cats-chocolate~science.dogs-chocolate", "science", [
        "Why is chocolate bad for cats?",
        "Can cats eat chocolate?"]),
    ("science.moon-distance", "science", [
        "How far away is the Moon?",
        "What is the distance from the Earth to the Moon?",
        "How many kilometres is it to the Moon?"]),
    ("science.sun-distance~science.moon-distance", "science", [
        "How far away is the Sun?",
        "What is the distance from the Earth to the Sun?"]),
    ("science.mars-distance~science.moon-distance", "science", [
        "How far away is Mars?",
        "What is the distance from the Earth to Mars?"]),
]

# --- template families -----------------------------------------------------------------
# Each: id prefix, domain, phrasing templates (first = most common), values. A value is
# a dict of slot -> text; `as` (optional) names the intent's id suffix. `lookalikes`:
# (value, the value it was derived from).

FAMILIES: list[dict] = [
    {"id": "geo.capital", "domain": "geography",
     "templates": ["What is the capital of {x}?", "What's the capital city of {x}?",
                   "Which city is the capital of {x}?", "capital of {x}?", "Can you tell me the capital of {x}?"],
     "values": ["France", "Germany", "Italy", "Spain", "Portugal", "Japan", "Australia", "Canada", "Brazil",
                "Argentina", "Egypt", "Kenya", "Nigeria", "Turkey", "India", "Pakistan", "Vietnam", "Thailand",
                "South Korea", "Mexico", "Peru", "Norway", "Sweden", "Finland", "Poland", "Greece", "Ireland",
                "New Zealand", "Switzerland", "Morocco", "Belgium"],
     "lookalikes": [("Austria", "Australia"), ("Slovakia", "Slovenia"), ("Slovenia", "Slovakia"),
                    ("North Korea", "South Korea"), ("Niger", "Nigeria"), ("Iran", "Iraq"), ("Iraq", "Iran")]},
    {"id": "geo.population", "domain": "geography",
     "templates": ["What is the population of {x}?", "How many people live in {x}?",
                   "How big is the population of {x}?", "{x} population?"],
     "values": ["Tokyo", "London", "Paris", "New York City", "Berlin", "Madrid", "Lagos", "Mumbai", "Sydney",
                "Toronto", "Cairo", "Istanbul", "Seoul", "Jakarta", "Lima"],
     "lookalikes": [("Paris, Texas", "Paris"), ("London, Ontario", "London"), ("Sydney, Nova Scotia", "Sydney")]},
    {"id": "geo.timezone", "domain": "geography",
     "templates": ["What time zone is {x} in?", "Which time zone does {x} use?", "What's the time zone in {x}?",
                   "{x} time zone?"],
     "values": ["Chicago", "Denver", "Lisbon", "Dubai", "Singapore", "Auckland", "Mexico City", "Johannesburg",
                "Helsinki", "Manila", "Buenos Aires", "Vancouver"]},
    {"id": "geo.currency", "domain": "geography",
     "templates": ["What currency is used in {x}?", "What's the currency of {x}?",
                   "Which currency do they use in {x}?", "What money do I need in {x}?"],
     "values": ["Switzerland", "Japan", "Denmark", "Hungary", "Czechia", "Brazil", "South Africa", "Thailand",
                "Turkey", "Mexico", "Poland", "Iceland", "Croatia", "Morocco", "Vietnam"]},
    {"id": "geo.highest-mountain", "domain": "geography",
     "templates": ["What is the highest mountain in {x}?", "Which is the tallest mountain in {x}?",
                   "highest peak in {x}?", "What's the tallest peak in {x}?"],
     "values": ["Japan", "Africa", "Europe", "South America", "the United States", "Canada", "Australia",
                "New Zealand", "Scotland", "Mexico"],
     "lookalikes": [("Wales", "Scotland")]},
    {"id": "geo.second-highest~geo.highest-mountain", "domain": "geography",
     "templates": ["What is the second highest mountain in {x}?", "Which is the second tallest mountain in {x}?"],
     "values": ["Japan", "Africa", "Europe", "the United States"]},
    {"id": "geo.longest-river", "domain": "geography",
     "templates": ["What is the longest river in {x}?", "Which river is the longest in {x}?",
                   "longest river in {x}?"],
     "values": ["Europe", "Africa", "Asia", "the United States", "France", "Germany", "India", "China",
                "Australia", "the United Kingdom"]},
    {"id": "geo.distance", "domain": "geography",
     "templates": ["How far is {a} from {b}?", "What's the distance between {a} and {b}?",
                   "How many kilometres from {a} to {b}?", "How far is it from {b} to {a}?"],
     "values": [{"a": "London", "b": "Paris"}, {"a": "Madrid", "b": "Barcelona"}, {"a": "New York", "b": "Boston"},
                {"a": "Tokyo", "b": "Osaka"}, {"a": "Berlin", "b": "Munich"}, {"a": "Sydney", "b": "Melbourne"},
                {"a": "Rome", "b": "Milan"}, {"a": "Los Angeles", "b": "San Francisco"},
                {"a": "Toronto", "b": "Montreal"}, {"a": "Delhi", "b": "Mumbai"}],
     "lookalikes": [({"a": "London", "b": "Edinburgh"}, {"a": "London", "b": "Paris"}),
                    ({"a": "Madrid", "b": "Valencia"}, {"a": "Madrid", "b": "Barcelona"}),
                    ({"a": "New York", "b": "Washington"}, {"a": "New York", "b": "Boston"}),
                    ({"a": "Berlin", "b": "Hamburg"}, {"a": "Berlin", "b": "Munich"})]},
    {"id": "geo.best-time", "domain": "travel",
     "templates": ["What's the best time of year to visit {x}?", "When is the best season to visit {x}?",
                   "When should I go to {x} for good weather?", "best month to visit {x}?"],
     "values": ["Iceland", "Japan", "Thailand", "Morocco", "Peru", "Greece", "Costa Rica", "Vietnam",
                "New Zealand", "Croatia", "Kenya", "Norway"]},
    {"id": "math.percent", "domain": "math",
     "templates": ["What is {p}% of {n}?", "How much is {p} percent of {n}?", "Calculate {p}% of {n}.",
                   "{p}% of {n}?", "what's {p} percent of {n}"],
     "values": [{"p": "15", "n": "80"}, {"p": "20", "n": "150"}, {"p": "25", "n": "60"}, {"p": "10", "n": "250"},
                {"p": "12", "n": "50"}, {"p": "30", "n": "90"}, {"p": "18", "n": "200"}, {"p": "40", "n": "75"},
                {"p": "5", "n": "1200"}, {"p": "8", "n": "350"}],
     "lookalikes": [({"p": "15", "n": "90"}, {"p": "15", "n": "80"}),
                    ({"p": "20", "n": "160"}, {"p": "20", "n": "150"}),
                    ({"p": "25", "n": "600"}, {"p": "25", "n": "60"}),
                    ({"p": "12", "n": "500"}, {"p": "12", "n": "50"}),
                    ({"p": "13", "n": "90"}, {"p": "30", "n": "90"}),
                    ({"p": "81", "n": "200"}, {"p": "18", "n": "200"})]},
    {"id": "math.times", "domain": "math",
     "templates": ["What is {a} times {b}?", "What's {a} multiplied by {b}?", "{a} x {b} = ?",
                   "Multiply {a} by {b}.", "what is {a} * {b}"],
     "values": [{"a": "12", "b": "12"}, {"a": "7", "b": "8"}, {"a": "15", "b": "15"}, {"a": "25", "b": "4"},
                {"a": "13", "b": "17"}, {"a": "9", "b": "11"}, {"a": "14", "b": "6"}, {"a": "19", "b": "21"}],
     "lookalikes": [({"a": "12", "b": "13"}, {"a": "12", "b": "12"}), ({"a": "7", "b": "9"}, {"a": "7", "b": "8"}),
                    ({"a": "15", "b": "16"}, {"a": "15", "b": "15"}),
                    ({"a": "13", "b": "71"}, {"a": "13", "b": "17"})]},
    {"id": "math.prime", "domain": "math",
     "templates": ["Is {n} a prime number?", "Is {n} prime?", "Can you check whether {n} is prime?",
                   "is {n} a prime"],
     "values": ["91", "97", "51", "57", "101", "221", "2027", "1001", "89", "143"],
     "lookalikes": [("93", "91"), ("98", "97"), ("53", "51"), ("102", "101"), ("2029", "2027")]},
    {"id": "math.sqrt", "domain": "math",
     "templates": ["What is the square root of {n}?", "What's the square root of {n}?", "sqrt of {n}?",
                   "Square root of {n}, please."],
     "values": ["144", "169", "2", "50", "225", "1000", "81", "3"],
     "lookalikes": [("196", "169"), ("5", "50"), ("10000", "1000"), ("18", "81")]},
    {"id": "math.cube-root~math.sqrt", "domain": "math",
     "templates": ["What is the cube root of {n}?", "What's the cube root of {n}?"],
     "values": ["144", "1000", "81"]},
    {"id": "math.convert", "domain": "math",
     "templates": ["How many {small} are in a {big}?", "How many {small} make a {big}?",
                   "How many {small} in one {big}?", "What's the number of {small} in a {big}?"],
     "values": [{"small": "grams", "big": "pound"}, {"small": "ounces", "big": "pound"},
                {"small": "centimetres", "big": "inch"}, {"small": "inches", "big": "foot"},
                {"small": "feet", "big": "mile"}, {"small": "millilitres", "big": "cup"},
                {"small": "litres", "big": "gallon"}, {"small": "seconds", "big": "day"},
                {"small": "minutes", "big": "week"}, {"small": "bytes", "big": "kilobyte"},
                {"small": "metres", "big": "mile"}, {"small": "teaspoons", "big": "tablespoon"}],
     "lookalikes": [({"small": "grams", "big": "ounce"}, {"small": "grams", "big": "pound"}),
                    ({"small": "kilograms", "big": "pound"}, {"small": "grams", "big": "pound"}),
                    ({"small": "centimetres", "big": "foot"}, {"small": "centimetres", "big": "inch"}),
                    ({"small": "yards", "big": "mile"}, {"small": "feet", "big": "mile"}),
                    ({"small": "seconds", "big": "week"}, {"small": "seconds", "big": "day"}),
                    ({"small": "bytes", "big": "megabyte"}, {"small": "bytes", "big": "kilobyte"}),
                    ({"small": "millilitres", "big": "tablespoon"}, {"small": "millilitres", "big": "cup"})]},
    {"id": "math.celsius", "domain": "math",
     "templates": ["What is {n} degrees Celsius in Fahrenheit?", "Convert {n}°C to Fahrenheit.",
                   "{n} C to F?", "How much is {n} Celsius in Fahrenheit?"],
     "values": ["20", "37", "100", "-40", "25", "0"],
     "lookalikes": [("30", "20"), ("38", "37"), ("52", "25")]},
    {"id": "math.fahrenheit~math.celsius", "domain": "math",
     "templates": ["What is {n} degrees Fahrenheit in Celsius?", "Convert {n}°F to Celsius.", "{n} F to C?"],
     "values": ["20", "37", "100", "0"]},
    {"id": "coding.howto", "domain": "coding",
     "templates": ["How do I {a} in {l}?", "What's the best way to {a} in {l}?", "{l}: how to {a}?",
                   "How can I {a} using {l}?", "Show me how to {a} in {l}."],
     "values": [{"a": act, "l": lang} for act, langs in (
         ("reverse a string", ("Python", "JavaScript", "Java", "Go")),
         ("read a file line by line", ("Python", "Java", "Go", "Rust")),
         ("convert a string to an integer", ("Python", "JavaScript", "Java", "C#")),
         ("get the current date and time", ("Python", "JavaScript", "Go")),
         ("sort a list of numbers", ("Python", "JavaScript", "Rust")),
         ("check if a key exists in a dictionary", ("Python", "C#")),
         ("make an HTTP GET request", ("Python", "JavaScript", "Go", "Java")),
         ("remove duplicates from a list", ("Python", "JavaScript")),
         ("parse JSON", ("Python", "JavaScript", "Go", "Rust")),
         ("write a unit test", ("Python", "JavaScript", "Go")),
     ) for lang in langs],
     "lookalikes": [({"a": "reverse a list", "l": "Python"}, {"a": "reverse a string", "l": "Python"}),
                    ({"a": "convert an integer to a string", "l": "Python"},
                     {"a": "convert a string to an integer", "l": "Python"}),
                    ({"a": "write a file line by line", "l": "Python"},
                     {"a": "read a file line by line", "l": "Python"}),
                    ({"a": "sort a list of numbers in descending order", "l": "Python"},
                     {"a": "sort a list of numbers", "l": "Python"}),
                    ({"a": "make an HTTP POST request", "l": "Python"},
                     {"a": "make an HTTP GET request", "l": "Python"}),
                    ({"a": "check if a key does not exist in a dictionary", "l": "Python"},
                     {"a": "check if a key exists in a dictionary", "l": "Python"})]},
    {"id": "support.toggle", "domain": "support",
     "templates": ["How do I {v} {f}?", "How can I {v} {f} on my account?", "Where do I go to {v} {f}?",
                   "Steps to {v} {f}?", "how to {v} {f}"],
     "values": [{"v": "turn on", "f": f} for f in (
         "two-factor authentication", "dark mode", "email notifications", "auto-renewal", "read receipts",
         "desktop notifications", "public sharing for a project")],
     "lookalikes": [({"v": "turn off", "f": f}, {"v": "turn on", "f": f}) for f in (
         "two-factor authentication", "dark mode", "email notifications", "auto-renewal",
         "public sharing for a project")]},
    {"id": "hr.leave-days", "domain": "hr",
     "templates": ["How many days of {x} do I get?", "What is my {x} entitlement?", "How much {x} am I entitled to?",
                   "How many days of {x} do employees get per year?"],
     "values": ["annual leave", "sick leave", "parental leave", "bereavement leave", "study leave"],
     "lookalikes": [("unpaid leave", "annual leave")]},
    {"id": "history.year", "domain": "history",
     "templates": ["When did {e}?", "What year did {e}?", "In which year did {e}?", "when did {e}"],
     "values": ["World War II end", "the Berlin Wall fall", "the first Moon landing happen",
                "the French Revolution begin", "the Titanic sink", "the Roman Empire fall",
                "the printing press get invented", "Columbus reach America",
                "the American Civil War end", "the Soviet Union collapse"],
     "lookalikes": [("World War I end", "World War II end"), ("World War II begin", "World War II end"),
                    ("the Berlin Wall go up", "the Berlin Wall fall"), ("the American Civil War begin",
                                                                        "the American Civil War end")]},
    {"id": "books.author", "domain": "books",
     "templates": ["Who wrote {x}?", "Who is the author of {x}?", "{x} was written by whom?", "who wrote {x}"],
     "values": ["Pride and Prejudice", "One Hundred Years of Solitude", "War and Peace", "The Great Gatsby",
                "1984", "To Kill a Mockingbird", "Don Quixote", "The Catcher in the Rye", "Moby-Dick",
                "Crime and Punishment", "Jane Eyre", "The Little Prince"],
     "lookalikes": [("Sense and Sensibility", "Pride and Prejudice"), ("Wuthering Heights", "Jane Eyre"),
                    ("Animal Farm", "1984"), ("Anna Karenina", "War and Peace"),
                    ("Go Set a Watchman", "To Kill a Mockingbird")]},
    {"id": "science.boiling-point", "domain": "science",
     "templates": ["What is the boiling point of {x}?", "At what temperature does {x} boil?",
                   "boiling point of {x}?"],
     "values": ["water", "ethanol", "liquid nitrogen", "olive oil", "mercury"]},
    {"id": "science.melting-point~science.boiling-point", "domain": "science",
     "templates": ["What is the melting point of {x}?", "At what temperature does {x} melt?"],
     "values": ["ice", "iron", "gold", "mercury"]},
    {"id": "cooking.boil-time", "domain": "cooking",
     "templates": ["How long should I boil {x}?", "How many minutes do I boil {x} for?", "boiling time for {x}?"],
     "values": ["spaghetti", "potatoes", "broccoli", "corn on the cob", "frozen peas", "lobster"]},
    {"id": "travel.visa", "domain": "travel",
     "templates": ["Do I need a visa to visit {b} with a {a} passport?",
                   "As a {a} citizen, do I need a visa for {b}?",
                   "{a} passport holder travelling to {b}: visa needed?"],
     "values": [{"a": "British", "b": "the United States"}, {"a": "American", "b": "Brazil"},
                {"a": "Indian", "b": "Japan"}, {"a": "Canadian", "b": "Australia"}, {"a": "German", "b": "India"}],
     "lookalikes": [({"a": "American", "b": "the United Kingdom"}, {"a": "British", "b": "the United States"}),
                    ({"a": "Brazilian", "b": "the United States"}, {"a": "American", "b": "Brazil"}),
                    ({"a": "Japanese", "b": "India"}, {"a": "Indian", "b": "Japan"})]},
]

# --- one-off questions (asked once in the stream: new questions) --------------------------
# Templates with numbers and names drawn by generate.py; every drawn question is its own
# intent. Many differ from the catalogue only by a number: the traps a semantic cache
# must not fall into.

ONE_OFF_TEMPLATES: list[tuple[str, str]] = [
    ("math", "What is {a} plus {b}?"),
    ("math", "What is {a} minus {b}?"),
    ("math", "What is {a} times {b}?"),
    ("math", "What is {p}% of {n}?"),
    ("math", "Is {n} a prime number?"),
    ("math", "What is the square root of {n}?"),
    ("math", "How many seconds are in {k} hours?"),
    ("math", "Convert {n} kilometres to miles."),
    ("math", "Convert {n} pounds to kilograms."),
    ("math", "What is {k} degrees Celsius in Fahrenheit?"),
    ("math", "If I save {n} dollars a month, how much will I have after {k} months?"),
    ("math", "Split a bill of {n} euros between {k} people: how much each?"),
    ("dates", "What day of the week was {d} {m} {y}?"),
    ("dates", "How many days are there between {d} {m} and {d2} {m2}?"),
    ("dates", "How old is someone born in {y}?"),
    ("writing", "Write a short birthday message for my colleague {name}."),
    ("writing", "Write a polite email to {name} asking to move our meeting to {day}."),
    ("writing", "Suggest a name for a {adj} {animal}."),
    ("writing", "Give me a two-line poem about {thing}."),
    ("writing", "Translate '{phrase}' into {lang}."),
    ("coding", "Write a Python function that returns the {k}th Fibonacci number."),
    ("coding", "Write a SQL query that selects the top {k} customers by total order value."),
    ("coding", "Write a regex that matches exactly {k} digits."),
    ("coding", "How do I get the last {k} lines of a file in Linux?"),
    ("support", "I was charged {n} dollars on {d} {m}. What is this charge for?"),
    ("support", "My order number {order} hasn't arrived yet. Where is it?"),
    ("hr", "I'm taking {k} days off starting {day}. Who do I need to tell?"),
    ("travel", "What's the flight time from {city} to {city2}?"),
    ("geography", "Which is bigger, {c1} or {c2}?"),
]

NAMES = ["Priya", "Tom", "Chen", "Amara", "Lukas", "Sofia", "Mateo", "Aisha", "Kenji", "Olivia", "Noah", "Fatima",
         "Diego", "Hannah", "Ravi", "Elena", "Samuel", "Mei", "Omar", "Clara"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday"]
MONTHS = ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December"]
ADJECTIVES = ["grumpy", "tiny", "fluffy", "shy", "very loud", "lazy", "curious", "three-legged"]
ANIMALS = ["cat", "dog", "hamster", "parrot", "goldfish", "tortoise", "rabbit"]
THINGS = ["Monday mornings", "the sea", "coffee", "autumn leaves", "a broken umbrella", "the last train home",
          "spreadsheets", "a quiet library"]
PHRASES = ["good morning", "thank you very much", "where is the station", "I would like a coffee",
           "see you tomorrow", "how much does this cost"]
LANGS = ["Spanish", "French", "German", "Italian", "Japanese", "Portuguese"]
CITIES = ["London", "Dubai", "Singapore", "New York", "Tokyo", "Paris", "Sydney", "Toronto", "Cape Town", "Lima"]
COUNTRIES = ["France", "Spain", "Germany", "Italy", "Japan", "Chile", "Peru", "Kenya", "Egypt", "Norway", "Sweden",
             "Poland"]
