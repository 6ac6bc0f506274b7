"""English customer-service lexicon, hand-written for socialcare.

Weights run from -3 (a customer who is furious) to +3 (delighted). The
domain matters more than textbook sentiment: "on hold", "still waiting",
"2 hours" and "rebook" carry no emotion words yet nearly always mean an
unhappy customer, while "sick" or "crazy" in a post to a brand often do not.
Multi-word entries are matched as whole token sequences and win over their
parts ("can't wait" is not a negated "wait").

Not derived from any data set; safe to ship.
"""
from __future__ import annotations

SENTIMENT = {
    # --- anger, disgust, strong disappointment
    "worst": -3.0, "terrible": -3.0, "horrible": -3.0, "awful": -3.0, "horrendous": -3.0,
    "atrocious": -3.0, "abysmal": -3.0, "appalling": -3.0, "disgusting": -3.0, "disgraceful": -3.0,
    "unacceptable": -3.0, "inexcusable": -3.0, "pathetic": -2.8, "ridiculous": -2.5, "absurd": -2.3,
    "outrageous": -2.8, "shameful": -2.8, "shame": -2.0, "disgrace": -2.8, "nightmare": -2.8,
    "disaster": -2.5, "disastrous": -2.8, "dreadful": -2.8, "lousy": -2.5, "crappy": -2.5,
    "crap": -2.3, "shitty": -2.8, "shit": -2.3, "sucks": -2.5, "suck": -2.3, "sucked": -2.3,
    "hate": -2.5, "hated": -2.5, "hates": -2.3, "furious": -3.0, "livid": -3.0, "angry": -2.5,
    "mad": -2.0, "pissed": -2.8, "annoyed": -2.0, "annoying": -2.0, "irritated": -2.0,
    "frustrated": -2.5, "frustrating": -2.5, "frustration": -2.5, "infuriating": -3.0,
    "disappointed": -2.5, "disappointing": -2.5, "disappointment": -2.5, "upset": -2.3,
    "unhappy": -2.3, "dissatisfied": -2.5, "unsatisfied": -2.3, "fed up": -2.8, "sick of": -2.5,
    "tired of": -2.3, "had enough": -2.5, "done with": -2.0, "over it": -1.8, "wtf": -2.5,
    "smh": -2.0, "ugh": -2.0, "argh": -2.0, "ffs": -2.5, "omg": -0.5, "seriously": -1.2,
    "really?": -1.0, "come on": -1.8, "bs": -2.3, "bullshit": -2.8, "fuck": -2.8, "fucking": -2.0,
    "damn": -1.5, "dammit": -2.0, "hell": -1.3, "joke": -1.8, "clown": -2.0, "clowns": -2.0,
    "embarrassing": -2.3, "insult": -2.3, "insulting": -2.5, "sad": -1.8, "sadly": -1.5,
    "unfortunately": -1.3, "unfortunate": -1.3, "regret": -2.0, "worse": -2.3, "worsened": -2.0,
    "bad": -2.0, "poor": -2.0, "poorly": -2.0, "mediocre": -1.5, "subpar": -2.0, "meh": -1.0,
    "fail": -2.3, "fails": -2.3, "failed": -2.0, "failing": -2.0, "failure": -2.3, "epic fail": -3.0,
    "mess": -2.0, "messed": -2.0, "screwed": -2.5, "screw": -1.8, "ruined": -2.8, "ruin": -2.3,
    "wasted": -2.3, "waste": -2.0, "useless": -2.8, "worthless": -2.8, "hopeless": -2.5,
    "helpless": -2.0, "incompetent": -3.0, "incompetence": -3.0, "clueless": -2.5, "inept": -2.8,
    "unprofessional": -2.8, "unhelpful": -2.5, "rude": -2.8, "rudely": -2.8, "condescending": -2.8,
    "disrespectful": -2.8, "arrogant": -2.5, "careless": -2.3, "lazy": -2.0, "ignorant": -2.3,
    "liar": -2.8, "liars": -2.8, "lied": -2.8, "lie": -2.0, "lies": -2.3, "lying": -2.5,
    "scam": -2.8, "scammed": -3.0, "fraud": -2.8, "fraudulent": -3.0, "rip off": -2.8,
    "ripoff": -2.8, "ripped off": -3.0, "misleading": -2.5, "dishonest": -2.8, "greedy": -2.5,
    "shady": -2.3, "sketchy": -1.8, "stole": -2.5, "stolen": -2.3, "theft": -2.3,
    # --- service failures: the words of a complaint that is not shouting
    "delay": -1.6, "delays": -1.8, "delayed": -2.0, "delaying": -1.8, "late": -1.5, "later": -0.3,
    "cancel": -1.0, "cancelled": -2.0, "canceled": -2.0, "cancellation": -1.8, "cancellations": -1.8,
    "cancelling": -1.5, "canceling": -1.5, "stranded": -2.8, "stuck": -2.3, "trapped": -2.3,
    "lost": -1.8, "missing": -1.8, "misplaced": -2.0, "never arrived": -2.5, "never received": -2.5,
    "never showed": -2.5, "never came": -2.3, "no show": -2.0, "didn't arrive": -2.3,
    "hasn't arrived": -2.3, "not arrived": -2.3, "not received": -2.3, "still waiting": -2.5,
    "still no": -2.3, "still not": -2.0, "still haven't": -2.3, "still hasn't": -2.3, "still": -0.8,
    "yet to": -1.8, "again": -0.6, "anymore": -1.2, "any more": -0.8, "broken": -2.0, "broke": -1.8,
    "damaged": -2.3, "damage": -1.8, "cracked": -2.0, "torn": -1.8, "ripped": -1.8, "defective": -2.5,
    "faulty": -2.3, "leaking": -2.0, "leaked": -2.0, "dirty": -2.3, "filthy": -2.8, "gross": -2.3,
    "smelly": -2.0, "stinks": -2.3, "stink": -2.3, "moldy": -2.5, "cold food": -2.0, "soggy": -2.0,
    "stale": -1.8, "expired": -1.8, "wrong": -1.8, "incorrect": -1.8, "mistake": -1.5,
    "error": -1.5, "errors": -1.5, "glitch": -1.8, "glitches": -1.8, "glitchy": -2.0, "bug": -1.3,
    "buggy": -2.0, "crash": -1.8, "crashed": -2.0, "crashes": -2.0, "crashing": -2.0,
    "outage": -2.0, "down": -0.8, "offline": -1.0, "not working": -2.3, "doesn't work": -2.3,
    "didn't work": -2.3, "don't work": -2.0, "won't work": -2.0, "stopped working": -2.5,
    "won't let": -2.0, "wouldn't let": -2.0, "can't get": -1.8, "cannot get": -1.8,
    "can't even": -2.0, "can't find": -1.3, "impossible": -2.0, "unable": -1.8, "can't": -1.0,
    "cannot": -1.0, "couldn't": -1.0, "won't": -0.8, "wouldn't": -0.8, "refused": -2.3,
    "refuse": -2.0, "refuses": -2.0, "refusing": -2.3, "denied": -2.0, "rejected": -1.8,
    "ignored": -2.5, "ignoring": -2.5, "ignore": -2.0, "ignores": -2.3, "no response": -2.5,
    "no reply": -2.5, "no answer": -2.3, "no help": -2.5, "no one": -1.8, "nobody": -1.8,
    "no idea": -1.3, "no info": -1.8, "no information": -1.8, "no updates": -2.0, "no update": -2.0,
    "no explanation": -2.3, "no apology": -2.3, "no communication": -2.3, "nothing": -1.0,
    "never": -1.2, "hold": -1.0, "on hold": -2.0, "hold music": -1.5, "hung up": -2.5,
    "hangs up": -2.5, "disconnected": -2.0, "waiting": -1.3, "waited": -1.6, "wait": -0.8,
    "wait time": -1.8, "wait times": -1.8, "hours": -1.0, "hour": -0.6, "hrs": -1.0, "hr": -0.6,
    "mins": -0.5, "minutes": -0.5, "days": -0.6, "weeks": -1.0, "forever": -1.8, "ages": -1.3,
    "overbooked": -2.3, "oversold": -2.3, "bumped": -1.8, "diverted": -1.5, "missed": -1.5,
    "miss": -1.0, "rebook": -1.0, "rebooked": -1.0, "rebooking": -1.0, "reschedule": -0.5,
    "refund": -1.2, "refunds": -1.2, "refunded": -0.3, "reimburse": -1.0, "reimbursement": -1.2,
    "compensation": -1.3, "compensate": -1.3, "charged": -1.2, "overcharged": -2.8,
    "double charged": -2.8, "charged twice": -2.8, "fee": -1.0, "fees": -1.2, "penalty": -1.5,
    "expensive": -1.3, "overpriced": -2.3, "complain": -2.0, "complaint": -2.0, "complaints": -2.0,
    "complaining": -1.8, "problem": -1.5, "problems": -1.8, "issue": -1.2, "issues": -1.5,
    "trouble": -1.5, "struggling": -1.8, "struggle": -1.5, "confused": -1.3, "confusing": -1.5,
    "unclear": -1.3, "inconvenience": -1.8, "inconvenienced": -2.0, "inconvenient": -1.8,
    "hassle": -2.0, "headache": -2.0, "chaos": -2.3, "chaotic": -2.3, "understaffed": -2.0,
    "uncomfortable": -2.0, "cramped": -2.0, "noisy": -1.3, "freezing": -1.3, "cold": -0.5,
    "hungry": -1.0, "tired": -1.0, "exhausted": -1.5, "sick": -1.0, "ill": -1.0, "hurt": -1.8,
    "injured": -2.5, "unsafe": -2.8, "dangerous": -2.8, "scary": -2.0, "scared": -2.0,
    "worried": -1.5, "concerned": -1.3, "anxious": -1.5, "stress": -1.8, "stressed": -2.0,
    "stressful": -2.0, "why": -0.7, "how come": -1.5, "what's going on": -1.8, "what happened": -1.3,
    "why is": -0.8, "explain": -0.8, "excuse": -1.5, "excuses": -2.0, "apology": -0.8,
    "apologize": -0.5, "sorry": -0.5, "please help": -1.3, "help me": -0.8, "need help": -1.0,
    "any help": -0.8, "fix": -1.0, "fix this": -2.0, "escalate": -1.8,
    "manager": -0.8, "supervisor": -1.0, "lawsuit": -2.8, "lawyer": -2.3, "sue": -2.3, "bbb": -2.0,
    "dot": -0.5, "never again": -3.0, "last time": -1.8, "never fly": -3.0, "never flying": -3.0,
    "never ordering": -3.0, "never buying": -3.0, "never using": -2.8, "switching to": -2.3,
    "lost a customer": -3.0, "lost my business": -3.0, "take my business": -2.8,
    "losing customers": -2.5, "loyal customer": -0.8, "excuse me": -1.3, "what a joke": -3.0,
    "are you kidding": -2.5, "you kidding": -2.3, "kidding me": -2.5, "thanks for nothing": -3.0,
    "thanks a lot": 0.3, "good luck": -0.3, "nice try": -1.5,
    "so much for": -2.0, "at least": -0.5, "supposed to": -1.5, "should have": -1.0,
    "should've": -1.0, "shouldn't": -1.0, "instead of": -0.5, "even though": -0.5,
    "how hard": -1.8, "not even": -1.5, "only one": -0.8, "whatsoever": -1.5, "at all": -0.8,
    "zero": -1.0, "none": -1.0, "left us": -1.5, "left me": -1.3, "without": -0.8,
    "nowhere": -1.5, "unreachable": -2.0, "busy signal": -2.3, "call back": -0.8,
    "keep getting": -1.5, "keeps": -0.8, "every time": -1.0, "each time": -0.8, "times": -0.3,
    "third time": -1.8, "second time": -1.3, "once again": -1.8, "yet again": -2.0,
    "lame": -2.0, "racist": -3.0, "racism": -3.0, "sexist": -3.0, "discrimination": -3.0,
    "crazy": -1.3, "insane": -1.5, "nuts": -1.3, "miserable": -2.5, "impolite": -2.3, "shock": -1.3,
    "shocked": -1.5, "shocking": -1.8, "clunky": -1.8, "criminal": -2.5, "what gives": -2.0,
    "what's up with": -1.5, "do something": -1.5, "yelled": -2.5, "yelling": -2.3, "screamed": -2.5,
    "shouted": -2.3, "no way to": -1.5, "doesn't work for me": -2.0, "does not work for me": -2.0,
    "behind schedule": -2.0, "real person": -1.3, "a human": -1.3, "speak to someone": -0.8,
    "even": -0.6, "that's it": -0.8, "tough": -1.0, "expect": -0.5, "expected better": -2.5,
    "expect better": -2.5, "offenders": -1.8, "blocking": -1.0, "cockroaches": -2.8, "roaches": -2.8,
    "alas": -1.5, "canned response": -2.3, "automated": -0.8, "could use": -0.8, "expires": -0.8,
    "no more": -1.0, "no other": -1.0, "no seats": -1.5, "not sure": -0.8, "not yet": -1.0,
    "haven't": -0.5, "hasn't": -0.5, "didn't": -0.5, "didnt": -0.5, "doesn't": -0.3, "isn't": -0.3,
    "wasn't": -0.3, "aren't": -0.3, "weren't": -0.5, "paid": -0.8, "pay": -0.5, "paying": -0.8,
    "bucks": -0.5, "charge": -1.0, "charging": -1.2, "told": -0.8, "was told": -1.5, "were told": -1.5,
    "supposed": -1.0, "apparently": -0.8, "tried": -0.8, "trying": -0.6, "already": -0.5,
    "need": -0.5, "needed": -0.5, "another": -0.5, "call": -0.3, "calling": -0.8, "called": -0.8,
    "phone": -0.5, "answering": -0.8, "respond": -0.8, "response": -0.5, "lose": -1.5, "losing": -1.5,
    "sitting here": -1.3, "hmm": -0.5, "odd": -1.0, "weird": -1.0, "strange": -1.0, "attitude": -1.0,
    "pointless": -2.0, "worry": -1.0, "worrying": -1.5, "pricey": -1.0, "explanation": -0.5,
    "wrong with": -1.8, "what is wrong": -2.0, "what's wrong": -2.0, "get it together": -2.5,
    "step up": -1.5, "do better": -2.3, "be better": -1.5, "no excuse": -2.5, "shame on": -2.8,
    "how is it": -1.0, "is anyone": -1.0, "anyone there": -1.8, "hello?": -1.5,
    "really bad": -2.5, "not happy": -2.5, "not impressed": -2.5, "not cool": -2.0, "not ok": -2.0,
    "not okay": -2.0, "not acceptable": -3.0, "not fair": -2.0, "unfair": -2.0,
    "act together": -2.5, "leaves much to be desired": -2.5, "could care less": -2.5,
    "couldn't care less": -2.5, "truthful": 1.0, "honest": 1.0, "accurate": 0.8, "tanked": -2.3,
    "silly": -1.3, "shut up": -2.5, "abandon": -2.3, "abandoned": -2.5, "fault": -1.8,
    "your fault": -2.5, "no longer": -1.5, "sympathy": -0.5, "make an effort": -1.3,
    "overwhelming": -1.0, "overwhelmed": -1.5, "pile on": -1.0, "indignation": -2.5, "fiction": -1.5,
    "freaking out": -2.0, "freaking": -1.0, "hard": -0.8, "devalued": -2.3, "average": -0.8,
    "limited": -0.5, "what about": -0.5, "stood me up": -2.5, "second chance": -1.0, "not": -0.4,
    "don't": -0.4, "dont": -0.4, "no": -0.4, "nope": -1.0, "nah": -0.8,
    "anything": -0.3, "someone": -0.3, "somebody": -0.3, "anyone": -0.3,
    # --- failures told without an emotion word: accounts, devices, safety, fraud
    "forgot": -1.8, "forgotten": -1.8, "forgetting": -1.5, "locked out": -2.3, "logged out": -1.5,
    "deleted": -1.8, "wiped": -2.0, "bricked": -2.8, "dropped call": -2.0, "dropped calls": -2.0,
    "hacked": -2.5, "unauthorized": -2.3, "unauthorised": -2.3, "counterfeit": -2.5, "fake": -1.8,
    "shattered": -2.3, "threats": -2.5, "threatening": -2.5, "threatened": -2.5, "harassing": -2.5,
    "harassment": -2.8, "harassed": -2.8, "panicking": -2.0, "panic": -1.8, "stone cold": -2.3,
    "no signal": -2.3, "no service": -2.0, "no announcements": -2.0, "no announcement": -2.0,
    "no warning": -1.8, "without telling": -1.8, "without warning": -1.8,
    "unattended": -1.5, "caught fire": -2.8, "overheating": -2.0, "overheated": -2.0,
    "texting while driving": -2.8, "fainted": -2.0, "drops": -0.8, "narrow": -1.0, "too narrow": -1.5,
    "spot on": 2.0, "price drops": 0.0, "drops in price": 0.0, "fraud team": 0.0, "fraud department": 0.0,
    # --- phrases that contain a sentiment word but are not one (common words such as "out",
    # "way", "who" do not open phrases here: each would cost a look-up in most posts)
    "lost and found": 0.0, "the best deal": 0.0, "best deal": 0.0,
    "the best price": 0.0, "best price": 0.0, "the best rate": 0.0, "best rate": 0.0,
    "zero issues": 1.5, "zero problems": 1.5, "zero buffering": 1.5, "zero lag": 1.5, "no lag": 1.0,
    "no buffering": 1.0, "useful": 1.5, "handy": 1.3,
    # --- praise, relief, delight
    "fixed": 1.0, "resolved": 1.5, "sorted": 1.0, "sorted out": 1.5, "works": 0.3, "works for me": 1.0,
    "good morning": 0.0, "good night": 0.0, "good evening": 0.0, "good afternoon": 0.0,
    "scratched": -1.8, "scratches": -1.5, "dented": -2.0, "stained": -1.8, "weak": -1.5,
    "nicest": 2.5, "friendliest": 2.8, "kindest": 2.8, "funniest": 2.0, "funny": 1.5, "touched": 2.0,
    "fav": 2.0, "thnx": 1.8, "thnks": 1.8, "tks": 1.5, "you bet": 1.0, "right on": 1.5,
    "giving me life": 2.5, "unfriendly": -2.3, "hilarious": 1.8, "classy": 2.0, "sweetest": 2.5,
    "loveliest": 2.5, "smoothest": 2.5, "easiest": 2.0, "quickest": 2.0, "fastest": 2.0,
    "thanks": 1.8, "thank": 1.8, "thank you": 2.3, "thankyou": 2.3, "thx": 1.8, "ty": 1.5,
    "tysm": 2.5, "thanx": 1.8, "appreciate": 2.3, "appreciated": 2.3, "appreciation": 2.0,
    "grateful": 2.5, "gratitude": 2.5, "love": 2.5, "loved": 2.5, "loves": 2.3, "loving": 2.3,
    "lovely": 2.3, "adore": 2.5, "great": 2.0, "greatest": 2.5, "awesome": 2.5, "amazing": 2.8,
    "amazed": 2.5, "excellent": 2.8, "exceptional": 2.8, "outstanding": 2.8, "superb": 2.8,
    "fantastic": 2.8, "wonderful": 2.8, "terrific": 2.5, "brilliant": 2.5, "fabulous": 2.5,
    "stellar": 2.5, "phenomenal": 2.8, "incredible": 2.3, "impressive": 2.3, "impressed": 2.3,
    "best": 2.2, "better": 0.8, "good": 1.3, "nice": 1.5, "fine": 0.5, "ok": 0.3, "okay": 0.3,
    "decent": 1.0, "solid": 1.0, "perfect": 2.5, "perfectly": 2.3, "flawless": 2.8,
    "happy": 2.0, "happier": 2.0, "glad": 1.8, "pleased": 2.0, "delighted": 2.8, "thrilled": 2.8,
    "excited": 2.3, "exciting": 2.0, "stoked": 2.5, "pumped": 2.0, "yay": 2.3, "woohoo": 2.5,
    "woo": 1.5, "hooray": 2.3, "hurray": 2.3, "congrats": 2.3, "congratulations": 2.3,
    "helpful": 2.3, "friendly": 2.3, "kind": 1.8, "kindness": 2.3, "nice job": 2.5,
    "courteous": 2.3, "polite": 2.0, "attentive": 2.0, "professional": 1.8, "professionalism": 2.0,
    "caring": 2.0, "patient": 1.3, "patience": 1.3, "sweet": 1.5, "gracious": 2.3,
    "accommodating": 2.3, "responsive": 2.0, "efficient": 2.0, "quick": 1.0, "quickly": 1.0,
    "fast": 1.0, "speedy": 1.5, "prompt": 1.5, "promptly": 1.5, "easy": 1.3, "easily": 1.0,
    "smooth": 1.8, "smoothly": 1.8, "seamless": 2.0, "painless": 2.0, "comfortable": 1.8,
    "comfy": 1.8, "clean": 1.0, "spacious": 1.5, "roomy": 1.5, "safe": 1.0, "safely": 1.5,
    "on time": 1.5, "early": 0.8, "ahead of schedule": 2.0, "upgrade": 1.0, "upgraded": 1.8,
    "complimentary": 1.5, "free": 0.5, "bonus": 1.3, "kudos": 2.8, "props": 2.0,
    "shoutout": 2.3, "shout out": 2.3, "bravo": 2.5, "well done": 2.5, "you rock": 2.8,
    "rock": 1.0, "rocks": 2.3, "rockstar": 2.5, "rockstars": 2.5, "hero": 2.3, "heroes": 2.3,
    "legend": 2.0, "lifesaver": 2.8, "life saver": 2.8, "saved": 1.3, "saved the day": 2.8,
    "saving": 1.0, "rescued": 2.0, "above and beyond": 3.0, "beyond expectations": 3.0,
    "fun": 1.8, "enjoy": 1.8, "enjoyed": 2.0, "enjoying": 2.0, "enjoyable": 2.0,
    "beautiful": 2.3, "gorgeous": 2.5, "stunning": 2.5, "cool": 1.3, "neat": 1.3,
    "delicious": 2.5, "tasty": 2.0, "yummy": 2.0, "fresh": 1.0, "favorite": 2.0,
    "favourite": 2.0, "fave": 2.0, "recommend": 1.8, "recommended": 1.5, "worth": 1.3,
    "worth it": 2.0, "pleasure": 2.3, "pleasant": 2.0, "relaxing": 1.8, "relieved": 1.8,
    "relief": 1.5, "welcome": 0.8, "welcoming": 1.8, "proud": 1.8, "loyal": 1.0, "trust": 1.0,
    "reliable": 1.8, "dependable": 1.8, "blessed": 2.0, "lucky": 1.5, "win": 1.3, "winning": 1.5,
    "can't wait": 2.3, "cant wait": 2.3, "looking forward": 2.3, "look forward": 2.0,
    "can't thank you enough": 3.0, "couldn't be happier": 3.0, "couldn't be better": 3.0,
    "no complaints": 2.0, "no problem": 1.0, "no worries": 1.0, "not bad": 1.0,
    "made my day": 3.0, "make my day": 2.5, "you guys are the best": 3.0, "the best": 2.3,
    "keep it up": 2.3, "keep up the good work": 3.0, "good job": 2.5, "great service": 2.8,
    "great job": 2.5, "good service": 2.3, "excellent service": 3.0, "customer for life": 3.0,
    "will fly again": 2.3, "fly again": 1.0, "love you": 2.8, "love it": 2.8, "love this": 2.8,
    "fingers crossed": 0.5, "hope": 0.5, "hopefully": 0.3, "wish": -0.3,
    "yes": 0.3, "lol": 0.5, "haha": 1.0, "hahaha": 1.3, "lmao": 0.5, "wow": 0.5,
    "please": -0.2, "pls": -0.5, "plz": -0.5, "asap": -1.3, "urgent": -1.3, "immediately": -1.0,
    "help": -0.3, "dm": -0.2, "dm'd": -0.8, "dmed": -0.8, "messaged": -0.5,
}

NEGATORS = frozenset("""
not no never none nobody nothing neither nor without hardly barely scarcely
dont don't didnt didn't doesnt doesn't isnt isn't wasnt wasn't arent aren't werent weren't
cant can't cannot couldnt couldn't wont won't wouldnt wouldn't shouldnt shouldn't
havent haven't hasnt hasn't hadnt hadn't aint ain't
""".split())

INTENSIFIERS = {
    "very": 1.3, "so": 1.3, "soo": 1.4, "really": 1.3, "extremely": 1.5, "super": 1.4,
    "totally": 1.3, "absolutely": 1.5, "completely": 1.4, "utterly": 1.5, "incredibly": 1.5,
    "truly": 1.3, "seriously": 1.3, "beyond": 1.4, "most": 1.3, "such": 1.3, "too": 1.2,
    "ridiculously": 1.5, "insanely": 1.5, "highly": 1.3, "deeply": 1.3, "especially": 1.2,
    "definitely": 1.2, "genuinely": 1.2, "quite": 1.1, "pretty": 1.1, "majorly": 1.4,
    "slightly": 0.6, "somewhat": 0.7, "kinda": 0.7, "kind of": 0.7, "sort of": 0.7, "bit": 0.7,
    "little": 0.8, "barely": 0.7, "mildly": 0.6, "fairly": 0.8,
}

# Words that report a situation rather than a feeling. In an enquiry
# ("will flight 12 be cancelled?") they say little about the customer's mood.
SITUATIONAL = frozenset("""
delay delays delayed late cancel cancelled canceled cancellation cancellations rebook rebooked rebooking
fee fees refund refunds charged charge paid pay lost missing hold wait waiting hours hour hrs hr
minutes mins days weeks another need needed phone call calling called problems problem issue issues
still again down miss missed stuck help outage outages
""".split())

# Openers that turn sarcastic when a grievance follows in the same sentence.
SARCASM_OPENERS = ("thanks", "thank", "thank you", "thx", "ty", "love how", "gotta love", "yay for",
                   "oh great", "great job", "way to go", "so much for")

REQUEST_PHRASES = (
    "please", "pls", "plz", "can you", "could you", "would you", "will you", "can someone",
    "can anyone", "let me know", "i need", "we need", "need to", "how do i", "how can i",
    "is there a way", "is it possible", "help me", "dm me", "contact me",
)

# Words that say the customer may leave or go public: raise priority.
CHURN_PHRASES = (
    "never again", "never fly", "never flying", "never ordering", "never buying", "never using",
    "switching to", "switch to", "lost a customer", "lost my business", "take my business",
    "cancel my account", "cancelling my account", "canceling my account", "close my account",
    "last time i", "done with", "going elsewhere", "unsubscribe",
)


EMOJI = {
    "😡": -3.0, "🤬": -3.0, "😠": -2.5, "💢": -2.3, "😤": -2.0, "👎": -2.3, "😞": -2.0, "😔": -1.8,
    "😢": -2.0, "😭": -1.5, "😩": -2.0, "😫": -2.0, "😖": -2.0, "😣": -1.8, "😒": -2.0, "🙄": -2.0,
    "😑": -1.3, "😐": -0.8, "😕": -1.5, "🙁": -1.8, "☹": -1.8, "😟": -1.5, "😰": -1.8, "😱": -1.5,
    "🤦": -2.0, "🤷": -0.8, "💩": -2.0, "🤮": -2.5, "🤢": -2.3, "😓": -1.5, "😪": -1.0, "💔": -2.0,
    "😂": 0.5, "🤣": 0.5, "😅": 0.0, "😀": 2.0, "😃": 2.0, "😄": 2.0, "😁": 2.0, "😊": 2.3,
    "☺": 2.0, "🙂": 1.3, "😍": 2.8, "🥰": 2.8, "😘": 2.3, "😎": 1.8, "🤩": 2.8, "🥳": 2.5,
    "❤": 2.5, "♥": 2.3, "💕": 2.5, "💖": 2.5, "💗": 2.5, "💙": 2.3, "💚": 2.3, "💜": 2.3,
    "🧡": 2.3, "💛": 2.3, "😻": 2.5, "👍": 1.8, "👏": 2.0, "🙌": 2.3, "🎉": 2.0, "🎊": 2.0,
    "✨": 1.3, "🌟": 1.8, "⭐": 1.3, "💯": 2.0, "🔥": 1.0, "✈": 0.0, "🙏": 1.0, "💪": 1.5,
    "👌": 1.8, "☀": 0.8, "🌈": 1.3, "😇": 2.0, "🤗": 2.3, "🥺": -0.5,
}

EMOTICONS = {
    ":)": 2.0, ":-)": 2.0, ": )": 1.8, ":d": 2.3, ":-d": 2.3, ";)": 1.5, ";-)": 1.5, "(:": 1.8,
    ":p": 1.0, "<3": 2.5, ":))": 2.3, ":-))": 2.3, "^^": 1.8, "^_^": 2.0, "=)": 1.8, ":]": 1.5,
    ":(": -2.0, ":-(": -2.0, ": (": -1.8, ":/": -1.5, ":-/": -1.5, ":'(": -2.3, "):": -1.8,
    ">:(": -2.8, "-_-": -1.5, ":|": -1.0, "d:": -1.8,
}
