"""Track data for demos, tests and benchmarks: the sample file and a synthetic generator.

Both draw on one bank of original lyric lines written for this project, grouped by theme (the sea,
heartbreak, city nights, ...), so that semantic search over the output has real structure: a query
about the sea should find the ocean songs. The bank holds, per theme, song titles with a two-line
chorus and rhymed verse couplets; songs are assembled as verse, chorus, verse, chorus.

``generate_tracks`` is deterministic for a seed and cheap (benchmarks ask for a million rows), and
``write_tracks`` can salt a file with rows that must fail validation, recording exactly how many good
rows it wrote so tests can check the ingest count to the row.
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal

__all__ = [
    "SAMPLE_PATH",
    "THEMES",
    "Theme",
    "WriteResult",
    "generate_tracks",
    "sample_tracks",
    "write_sample",
    "write_tracks",
]

SAMPLE_PATH: Final = Path(__file__).parent / "data" / "sample_tracks.jsonl"
CSV_COLUMNS: Final = ("id", "artist", "title", "lyrics", "genre", "year", "theme")


@dataclass(frozen=True, slots=True)
class Theme:
    """One subject of songs: its genres, fictional artists, titled choruses and verse couplets."""

    name: str
    genres: tuple[str, ...]
    artists: tuple[str, ...]
    songs: tuple[tuple[str, str, str], ...]  # (title, chorus line 1, chorus line 2)
    couplets: tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True)
class WriteResult:
    """What ``write_tracks`` wrote: rows that validate (``good``) and rows made to fail (``bad``)."""

    good: int
    bad: int

    @property
    def rows(self) -> int:
        return self.good + self.bad


# fmt: off
THEMES: Final[tuple[Theme, ...]] = (
    Theme(
        name="ocean",
        genres=("folk", "sea shanty", "indie folk"),
        artists=("The Tidewater Brothers", "Marin Callow", "Saltglass", "Ida Fenwick and the Gulls"),
        songs=(
            ("Evening Tide", "Carry me home on the evening tide,", "where the gulls and the harbor lanterns ride."),
            ("Salt in the Sails", "There's salt in the sails and the wind at my back,",
             "and the sea keeps calling down the whale road's track."),
            ("Harbor Lights", "Harbor lights, harbor lights, burning low,",
             "guide my little boat where the deep waters go."),
            ("Anchor Down", "Let the anchor down where the water is still,",
             "I have sailed the ocean and I've had my fill."),
            ("The Lighthouse Keeper", "The lighthouse keeper leaves his lamp aglow",
             "for every sailor lost on the sea below."),
            ("Westward Swell", "Ride the westward swell till the land is gone,",
             "we'll be rocked by the ocean till the break of dawn."),
            ("Mariner's Daughter", "I'm a mariner's daughter, the waves are my kin,",
             "and the tide running out is the tide coming in."),
            ("Deep Blue Water", "Deep blue water, deep blue sea,", "every wave that breaks is a song for me."),
            ("Coral and Foam", "Coral and foam on the edge of the bay,",
             "the ocean takes my worries and it washes them away."),
            ("The Captain's Log", "Write it in the captain's log tonight:",
             "we crossed the open ocean by the north star's light."),
            ("Storm off Cape Morrow", "Hold fast, my crew, through the storm off Cape Morrow,",
             "the sea may take the ship but it won't take tomorrow."),
            ("Fisherman's Prayer", "Bring the nets in full and bring the boats in slow,",
             "bless the fishermen out where the cold currents flow."),
            ("Sea Glass", "Like sea glass smoothed by a thousand tides,",
             "my heart's been tumbled where the ocean hides."),
            ("Whale Song", "Hear the whale song rising from the ocean floor,",
             "calling through the fathoms to the distant shore."),
            ("Shoreline", "Walk with me along the shoreline slow,", "where the waves write letters in the sand below."),
            ("Ship in a Bottle", "I'm a ship in a bottle dreaming of the sea,",
             "with a painted ocean that won't set me free."),
            ("Trade Winds", "Trade winds blowing, fill our sails,", "we'll chase the sun along the ocean trails."),
            ("Low Tide", "At low tide I can walk out to the rocks", "and count the boats returning to the docks."),
            ("Drifting", "Drifting, drifting on the open sea,", "the compass spinning and the stars for company."),
            ("The Last Voyage", "One last voyage past the harbor wall,",
             "then I'll hang my oilskin up and heed the shore's call."),
        ),
        couplets=(
            ("The morning fog rolls over the quay,", "the fishing boats are heading out to sea."),
            ("My father sailed these waters long ago,", "he knew each reef and every undertow."),
            ("The salt spray stings my face against the rail,", "the bosun shouts to tighten up the sail."),
            ("The compass needle trembles in its case,", "the ocean has no roads and leaves no trace."),
            ("I hear the rigging singing in the gale,", "the waves as tall as churches, cold and pale."),
            ("The seagulls circle low above the mast,", "the coastline fades, the open sea is vast."),
            ("We trimmed the jib and tacked against the breeze", "and watched the harbor vanish in the seas."),
            ("The tide comes in and smooths the sandy shore", "and takes the footprints that were there before."),
            ("At night the ocean glitters like a crown,", "the lantern swings as the moon goes down."),
            ("The sailors sing to keep the fear away", "of all the ships that sank beneath the bay."),
            ("The dolphins race beside the wooden bow,", "the sea is all the home I'm needing now."),
            ("I tasted salt and tar upon my tongue,", "I've loved the ocean since the day I was young."),
        ),
    ),
    Theme(
        name="heartbreak",
        genres=("pop", "soul", "R&B"),
        artists=("Celia Marr", "The Broken Clocks", "Jonah Vale", "Ruby Ashgrove"),
        songs=(
            ("Half a Heart", "You left me with half a heart and a coffee cup,",
             "I keep pouring for two and I can't give it up."),
            ("Your Side of the Bed", "Your side of the bed is cold tonight,",
             "I still reach for you when I turn out the light."),
            ("Goodbye in Pencil", "You wrote goodbye in pencil, so I prayed it would fade,",
             "but it's still on the page of the promises we made."),
            ("Tears on the Telephone", "Tears on the telephone, your voice so far away,",
             "you say you still love me but you just can't stay."),
            ("Last Dance Alone", "This is my last dance alone in the dark",
             "with the ghost of your kiss and a broken heart."),
            ("Shattered Glass", "Our love's like shattered glass on the kitchen floor,",
             "I keep cutting my hands on what we were before."),
            ("You Don't Call Anymore", "You don't call anymore, you don't say my name,",
             "and the nights feel longer, but I love you the same."),
            ("Someone New", "I saw you with someone new downtown,",
             "and my heart hit the pavement, it came crashing down."),
            ("Unsent Letters", "I've got a box of unsent letters by the door,",
             "every one says I miss you and I want you more."),
            ("Promise Ring", "I still wear the promise ring you gave,",
             "though the promise that you made was too weak to save."),
            ("Cold Coffee", "Cold coffee and a note on the table", "said you'd love me forever, but you weren't able."),
            ("Heart on the Floor", "You left my heart on the floor by the door,",
             "and you don't want to love me anymore."),
            ("Faded Photograph", "In a faded photograph you're smiling at me,",
             "back when we were happy, back when we were free."),
            ("The Space Between Us", "The space between us grows with every night,",
             "we used to hold each other, now we only fight."),
            ("Still Your Name", "I still whisper your name when the rain comes down,",
             "though you packed up your love and you left this town."),
            ("Crying in the Car", "I'm crying in the car in the grocery lot,",
             "singing our old song with the heartache I've got."),
            ("Broken Promises", "Broken promises scattered like leaves,",
             "you swore you were staying, now nobody believes."),
            ("Lonely Side of Love", "I'm living on the lonely side of love,",
             "where the tears fall down like rain from above."),
            ("Old Lover's Lullaby", "Sleep well, my old lover, I won't call again,",
             "I'll heal this broken heart the way I did back then."),
            ("Ashes of Us", "All that's left are the ashes of us,", "a goodbye kiss and a broken trust."),
        ),
        couplets=(
            ("I kept your sweater in the bottom drawer,", "it smells like you and I can't take it anymore."),
            ("We used to dance barefoot down the hall,", "now there's just a picture frame upon the wall."),
            ("My friends all tell me I should let you go,", "but they don't know the way you loved me so."),
            ("I hear your laughter in an empty room,", "and every love song sounds too much like you."),
            ("You said forever on a summer night,", "but forever ended in a winter fight."),
            ("I checked my phone a hundred times today,", "but there is nothing left for you to say."),
            ("I tried to hate you but I never could,", "I'd take you back tonight if I knew you would."),
            ("Your perfume lingers on the pillowcase,", "I close my eyes and I can see your face."),
            ("We were a fire that burned a little fast,", "and I was foolish thinking it would last."),
            ("I wrote you letters that I'll never send,", "I lost a lover and I lost a friend."),
            ("The tears keep falling like they'll never stop,", "you held my heart and then you let it drop."),
            ("I drive past your old apartment late at night,", "I see your shadow moving in the light."),
        ),
    ),
    Theme(
        name="city nightlife",
        genres=("synthpop", "R&B", "house"),
        artists=("Neon Avenue", "Dex Monroe", "The Midnight Transit", "Lola Veil"),
        songs=(
            ("Neon Boulevard", "Down on Neon Boulevard the night is young,",
             "the city's humming like a song that's never sung."),
            ("Taxi Lights", "Taxi lights are streaming down the avenue,",
             "the skyline's glowing and I'm looking for you."),
            ("Rooftop at Midnight", "Meet me on the rooftop at midnight,", "above the traffic and the city lights."),
            ("Subway Dreams", "Riding the subway with my city dreams,",
             "the night is never quiet, it's louder than it seems."),
            ("After Hours", "After hours in the downtown haze,", "the bars are full and the streetlights blaze."),
            ("Skyline Fever", "I've got skyline fever, I can't sleep tonight,",
             "the city calls my name in electric light."),
            ("Downtown Glow", "In the downtown glow we come alive,", "the sidewalks shine and the night cabs drive."),
            ("Velvet Lounge", "Down at the velvet lounge the saxophone plays,",
             "the smoke and the city lights swirl in a haze."),
            ("Sleepless Streets", "These sleepless streets don't ever close their eyes,",
             "the city burns beneath the orange skies."),
            ("Last Train Home", "We missed the last train home again,",
             "so we danced on the platform in the neon rain."),
            ("Streetlight Serenade", "Under the streetlight I'll serenade you",
             "while the city sleeps and the night rolls through."),
            ("Cab to Nowhere", "Take a cab to nowhere with the windows down,",
             "we're chasing the night through the heart of the town."),
            ("Club on Seventh Street", "At the club on Seventh Street the bass is loud,",
             "and I lose myself inside the midnight crowd."),
            ("Metropolis", "Metropolis, you never let me rest,", "your towers shine like diamonds in the west."),
            ("Night Shift Lovers", "We're night shift lovers in a city that won't sleep,",
             "with secrets in the alleys and promises to keep."),
            ("Fortieth Floor", "Elevator up to the fortieth floor,", "the city's spread beneath us like never before."),
            ("Alleyway Jazz", "Alleyway jazz spilling out of the door,",
             "the trumpet's crying and the dancers want more."),
            ("Three A.M.", "It's three a.m. and the city's still awake,",
             "the coffee's strong and the neon never breaks."),
            ("Bright Lights, Late Nights", "Bright lights, late nights, the city in my veins,",
             "the taxis splash the gutters after summer rains."),
            ("Skyscraper Moon", "The skyscraper moon hangs over the bay,",
             "the city lights are brighter than the day."),
        ),
        couplets=(
            ("The traffic hums a rhythm through the street,", "the city has a pulse, the city has a beat."),
            ("The doorman nods and lets us past the line,", "the bartender pours another glass of wine."),
            ("The billboards flash in purple, red and blue,", "a thousand strangers and I only see you."),
            ("We hopped between the bars on Second Street,", "the pavement pounding underneath our feet."),
            ("The subway rumbles underneath the ground,", "the city never sleeps and never slows down."),
            ("A saxophone is crying on the corner,", "the night is warm and only getting warmer."),
            ("The skyline glitters like a diamond ring,", "and every lighted window has a song to sing."),
            ("We shared a slice of pizza at two a.m.,", "then caught a taxi to the club again."),
            ("The jazz bar's open till the break of day,", "the bassist plays the city blues away."),
            ("The rain makes mirrors of the city streets,", "the neon bleeding where the gutter meets."),
            ("High heels and sneakers on the crowded block,", "nobody here is watching any clock."),
            ("The sirens wail somewhere across the town,", "but up here on the roof we won't come down."),
        ),
    ),
    Theme(
        name="war and protest",
        genres=("protest folk", "punk", "folk rock"),
        artists=("The Iron Choir", "Hattie Brannock", "Picket Line", "Ezra Cole"),
        songs=(
            ("Marching Orders", "They gave us marching orders and a gun",
             "and sent us off to fight a war that can't be won."),
            ("Raise Your Voice", "Raise your voice, raise your fist to the sky,",
             "we won't be silent while the innocent die."),
            ("Boots on the Square", "Boots on the square and the banners held high,",
             "we're marching for freedom and we're asking why."),
            ("Soldier's Letter", "Dear mother, I'm writing from the trenches tonight,",
             "the guns never stop and there's no end in sight."),
            ("Barricade", "Stand at the barricade and hold the line,",
             "they can take our bodies but they won't take our minds."),
            ("No More Wars", "No more wars, no more flags on the graves,", "no more young men sent away to be brave."),
            ("Bullets and Ballots", "Bullets or ballots, the choice is ours,",
             "we'll fight for the people, not the men in towers."),
            ("The General's Medal", "The general's medal shines upon his chest",
             "while the boys in the field are laid to rest."),
            ("Sirens over the Border", "Sirens over the border, smoke on the hill,",
             "the children are hiding and the air is still."),
            ("March On", "March on, march on through the tear gas and rain,",
             "we'll keep on marching till we break every chain."),
            ("Peace Signs", "Paint the peace signs on the city wall,", "we stand together or together we fall."),
            ("Drums of War", "Hear the drums of war rolling over the plain,",
             "another generation sent to die in vain."),
            ("Strike Line", "Standing on the strike line in the freezing cold,",
             "we want a fair wage, we won't be bought and sold."),
            ("Homefront", "On the homefront we wait by the radio", "for news of our sons in the battle below."),
            ("The People's Song", "This is the people's song, sing it loud and strong,",
             "we've been quiet for too long, way too long."),
            ("Ceasefire", "Ceasefire, ceasefire, lay the rifles down,",
             "let the soldiers come home to their own hometown."),
            ("Trenchlight", "By the trench light I can see my brother's face,",
             "we are fighting for a flag in a foreign place."),
            ("Rubble and Roses", "Out of the rubble the roses will grow,",
             "the tyrants will fall and the people will know."),
            ("Conscription Day", "On conscription day they called my name,",
             "now the fields are burning and nothing's the same."),
            ("Stand Your Ground", "Stand your ground when the riot police come,",
             "link your arms together and beat the drum."),
        ),
        couplets=(
            ("The tanks rolled in at the break of day,", "and the town we loved was blown away."),
            ("They told us it was for our nation's pride,", "but they never told us why the soldiers died."),
            ("We painted signs and marched down to the hall,", "the mayor locked the doors and heard no call."),
            ("My brother wrote me from the front in June,", "he said the shells were falling like a monsoon."),
            ("The politicians shake their hands and smile", "while the coffins are stacked up in single file."),
            ("We sang our songs in front of the police,", "we held our candles and we asked for peace."),
            ("There's mud and blood upon my uniform,", "the shelling never stops, the night's a storm."),
            ("A thousand voices rising in the square,", "the tear gas drifting in the winter air."),
            ("They burned the books and jailed the ones who spoke,", "but freedom rises like the morning smoke."),
            ("The widows stand in black along the road,", "and each one carries her own heavy load."),
            ("We won't be drafted into their parade,", "we won't be soldiers in a war they made."),
            ("The factory owners hide behind their gates", "while the workers starve and the hunger waits."),
        ),
    ),
    Theme(
        name="faith and gospel",
        genres=("gospel", "contemporary Christian", "soul"),
        artists=("The Jordan River Singers", "Mavis Holloway", "Sweet Canaan Choir", "Brother Amos Grey"),
        songs=(
            ("Lay It at the Altar", "Lay it at the altar, leave your burden there,",
             "the Lord will lift you up in the power of prayer."),
            ("Glory Morning", "On that glory morning we will rise", "and see the Savior's face beyond the skies."),
            ("Hallelujah Road", "Walking down the Hallelujah road,", "Jesus helps me carry every heavy load."),
            ("Washed in the River", "Take me down and wash me in the river,",
             "my soul belongs to God, the faithful giver."),
            ("He Holds My Hand", "He holds my hand when the storm is raging,", "His love for me is never changing."),
            ("Sunday Bells", "Sunday bells are ringing, calling me to pray,",
             "I'll sing praises to the Lord on this holy day."),
            ("Mercy Seat", "Bow down low before the mercy seat,", "where grace and glory and forgiveness meet."),
            ("Prayer Warrior", "I'm a prayer warrior down on my knees,", "I call on heaven and the Lord hears me."),
            ("Heaven's Door", "When I come knocking on heaven's door,", "I'll lay my burdens down and weep no more."),
            ("Shepherd of My Soul", "Shepherd of my soul, lead me through the night,",
             "guide me with your staff into the morning light."),
            ("Testify", "I'm gonna testify, gonna lift my voice,", "I was lost in sin but I made my choice."),
            ("Jericho Walls", "Let the walls of Jericho tumble down,", "the faithful shout and the trumpets sound."),
            ("Calvary's Hill", "Up on Calvary's hill my Savior bled,", "He gave His life and He rose from the dead."),
            ("Praise Him in the Valley", "Praise Him in the valley, praise Him on the hill,",
             "praise Him when you're weary, and praise Him still."),
            ("Choir of Angels", "A choir of angels singing round the throne,",
             "I know the Lord will never leave me alone."),
            ("Mustard Seed", "Faith like a mustard seed can move the mountain,",
             "His grace keeps flowing like a holy fountain."),
            ("Grace Enough", "There is grace enough for every sinner here,",
             "come to the Father and He'll calm your fear."),
            ("Born Again", "I was born again one Sunday in the rain,",
             "the preacher laid his hands on me and took away my pain."),
            ("Glory Bound", "I'm glory bound on the narrow way,", "with the Holy Spirit guiding me every day."),
            ("Rock of My Salvation", "You are the rock of my salvation, Lord,",
             "my shield, my strength, my faithful sword."),
        ),
        couplets=(
            ("My mama used to pray beside my bed,", "she read the holy Bible and she bowed her head."),
            ("The preacher's voice was thunder on the hill,", "the congregation rose and then was still."),
            ("I've been a sinner and I've gone astray,", "but the Lord forgave me and He showed the way."),
            ("The choir was singing in the old white church,", "the Spirit found me when I'd quit my search."),
            ("When my burdens weigh me down like stone,", "I know I never have to walk alone."),
            ("I raise my hands up to the heavens high", "and praise the Lord who's always standing by."),
            ("Down by the river where the baptized stand,", "the deacon takes the sinner by the hand."),
            ("The devil tried to steal my joy away,", "but I kept on praying every single day."),
            ("His mercy falls like rain on thirsty ground,", "and in His love my restless heart is bound."),
            ("Hallelujah, let the people sing,", "glory, glory to our Lord and King."),
            ("When the trumpet sounds on judgment day,", "the faithful will rise and be carried away."),
            ("I read the Psalms by candlelight at night,", "and every verse becomes a guiding light."),
        ),
    ),
    Theme(
        name="rural farm life",
        genres=("country", "bluegrass", "Americana"),
        artists=("Cody Harlan", "The Red Barn Ramblers", "Lacey Mae Tucker", "Wheatfield Union"),
        songs=(
            ("Tractor in the Rain", "There's a tractor in the rain and the corn's knee high,",
             "I'm a farmer's son under a gray country sky."),
            ("Red Barn Morning", "Red barn morning and the rooster crows,",
             "daddy's in the field working down the rows."),
            ("Harvest Time", "Come harvest time we'll bring the wheat on in,",
             "the whole town gathers when the threshing days begin."),
            ("Dirt Road Home", "Take that dirt road home past the cattle gate,",
             "mama's got the supper waiting, don't be late."),
            ("Hay Bale Heaven", "Lying on a hay bale underneath the stars,",
             "far from the highways and the city cars."),
            ("County Fair", "Meet me at the county fair tonight,",
             "with the blue ribbon pigs and the Ferris wheel lights."),
            ("Rain on the Tin Roof", "Rain on the tin roof, the crops are saved,",
             "the good Lord heard the prayers the farmers prayed."),
            ("Plowing Season", "It's plowing season and the ground is soft,",
             "the mules are restless and the seed's up in the loft."),
            ("Grandpa's Fields", "These are grandpa's fields, he worked them all his life",
             "with calloused hands and a patient, faithful wife."),
            ("Creek Bend", "Down at the creek bend where the willows grow,",
             "we'd catch the catfish when the water's low."),
            ("Cornfield Sunset", "Cornfield sunset painting gold and red,",
             "the cows come home and the chickens go to bed."),
            ("Milking at Dawn", "Milking at dawn in the cold dairy barn,",
             "there's steam on the pail on my daddy's farm."),
            ("Drought Year", "In the drought year the river ran dry,",
             "we watched the dust blow under the burning sky."),
            ("Pickup and a Pasture", "All I need's a pickup and a pasture green,",
             "a good dog riding shotgun and a sky that's clean."),
            ("Barn Dance", "Swing your partner at the Saturday barn dance,",
             "the fiddle's playing and the farm boys take a chance."),
            ("Seed and Soil", "Seed and soil and the sweat of my brow,",
             "I'll feed this family with my hands and my plow."),
            ("The Old Windmill", "The old windmill is turning slow,", "pumping water to the thirsty fields below."),
            ("Sweet Sorghum", "Sweet sorghum boiling in the autumn air,", "and the apple orchard heavy everywhere."),
            ("Country Mile", "I'd walk a country mile for the girl next door,",
             "past the silo and the soybeans and the feed store."),
            ("Farmer's Almanac", "The farmer's almanac says frost is coming soon,",
             "we'll get the pumpkins in by the light of the moon."),
        ),
        couplets=(
            ("The sun comes up across the soybean rows,", "I pull my boots on as the rooster crows."),
            ("We mend the fences when the winter's through", "and plant the seed corn when the sky turns blue."),
            ("My mama cans the peaches every fall,", "the jars are lined up on the pantry wall."),
            ("The cattle graze along the lower hill,", "the creek runs cold beside the old grist mill."),
            ("The combine's rolling through the golden grain,", "we need to get it in before the rain."),
            ("The hound dog's sleeping on the front porch boards,", "the radio is playing country chords."),
            ("We bale the hay before the summer storm", "and stack it in the loft to keep it warm."),
            ("Granddad's old tractor coughs before it starts,", "that engine's held together with a hundred parts."),
            ("The chickens scratch the barnyard dirt all day,", "the goats are chewing on the winter hay."),
            ("The bank man came to talk about the loan,", "but we'll never sell the land we call our own."),
            ("The church bells ring across the farming town", "on Sunday morning when the work's laid down."),
            ("I learned to drive a truck at twelve years old", "out in the pasture where the wheat turns gold."),
        ),
    ),
    Theme(
        name="space and astronomy",
        genres=("indie rock", "synthwave", "ambient pop"),
        artists=("Orbital Drift", "Nova Lane", "The Satellites of Ohm", "Kira Solstice"),
        songs=(
            ("Satellite Heart", "I'm a satellite heart on a lonely track,",
             "circling the Earth and I'm never coming back."),
            ("Andromeda", "Andromeda, you're shining in the dark,", "two million light-years away, a silver spark."),
            ("Launch Pad", "Ten, nine, eight on the launch pad tonight,",
             "we're breaking through the sky on a rocket's flight."),
            ("Saturn's Rings", "Ride with me around Saturn's rings,",
             "where the ice is glowing and the starlight sings."),
            ("Event Horizon", "At the event horizon time stands still,",
             "I'm falling toward the black hole against my will."),
            ("Moon Base Lullaby", "Sleep now on the moon base, the Earth is rising blue,",
             "a quarter million miles between me and you."),
            ("Comet Tail", "Catch a ride on a comet's tail", "past the frozen planets where the sun grows pale."),
            ("Made of Stardust", "We are made of stardust and a little bit of light,",
             "burning like a nebula across the endless night."),
            ("Telescope", "Through my telescope I count the stars,", "the moons of Jupiter and the red dust of Mars."),
            ("Zero Gravity", "Zero gravity, floating free,", "the whole wide universe is calling me."),
            ("Mission Control", "Mission Control, do you read me now?",
             "I'm drifting past the moon and I don't know how."),
            ("Supernova", "Like a supernova I'll explode in light,", "a dying star that's burning twice as bright."),
            ("Milky Way Motel", "Check into the Milky Way Motel,",
             "where every window looks out where the meteors fell."),
            ("Cosmonaut", "Cosmonaut, cosmonaut, far from home,", "in a silver capsule orbiting alone."),
            ("Light-Years", "We're light-years apart but I still see your glow,",
             "a star that died a thousand years ago."),
            ("Red Planet", "On the red planet the dust storms blow,", "we built a colony where nothing grows."),
            ("Constellations", "Connect the constellations one by one,",
             "and draw your name in stars before the night is done."),
            ("Orbit", "Caught in your orbit, I can't break free,", "your gravity keeps pulling me."),
            ("Meteor Shower", "Lie in the meadow for the meteor shower,",
             "the sky is raining fire at the midnight hour."),
            ("Beyond the Nebula", "Beyond the nebula the galaxies turn,", "a billion suns in the darkness burn."),
        ),
        couplets=(
            ("The rocket engines roar beneath my seat,", "the countdown ends, the sky and fire meet."),
            ("I watched the Earth become a small blue stone,", "out here among the stars I'm all alone."),
            ("The astronauts are floating in the hull,", "the silence of the cosmos deep and full."),
            ("The moon is rising, silver, cold and bright,", "the planets wander slowly through the night."),
            ("A shooting star went streaking past the hill,", "I made a wish and I am wishing still."),
            ("The radio telescope is listening wide", "for any voice from the galaxy's far side."),
            ("We mapped the craters on the lunar face", "and planted flags in the empty space."),
            ("The solar wind is streaming past the glass,", "I watch the tumbling asteroids go past."),
            ("A million stars are scattered like the sand,", "the universe too big to understand."),
            ("I found the Big Dipper in the northern sky", "and Venus shining as the clouds went by."),
            ("The station circles every ninety minutes,", "the Earth below with all the lives within it."),
            ("The galaxy is spinning like a wheel,", "the cosmic light is all that I can feel."),
        ),
    ),
    Theme(
        name="partying and dancing",
        genres=("dance-pop", "disco", "EDM"),
        artists=("DJ Kaleido", "The Glitter Hounds", "Bonnie Blaze", "Sugar Rush Collective"),
        songs=(
            ("Turn It Up", "Turn it up, turn it up, let the bass drop low,",
             "everybody on the dance floor, here we go."),
            ("Disco Fever Friday", "It's disco fever Friday and the mirror ball is spinning,",
             "the weekend's here and the party's just beginning."),
            ("Hands in the Air", "Put your hands in the air, wave them side to side,",
             "we're dancing all night on a sugar high."),
            ("Dance Till Dawn", "We're gonna dance till dawn, we're gonna lose control,",
             "let the music move your body and your soul."),
            ("Glitter and Gold", "Glitter and gold on the party dress,", "we'll dance tonight and clean up the mess."),
            ("Bass Drop", "Wait for the bass drop, feel it in your chest,",
             "jump with the crowd, this party is the best."),
            ("Shake It Loose", "Shake it loose, shake it loose on the floor,",
             "the DJ's spinning and we want some more."),
            ("Confetti Cannon", "Fire the confetti cannon in the air,",
             "there's music and there's dancing everywhere."),
            ("Mirror Ball", "Under the mirror ball we shine so bright,", "dancing with strangers in the disco light."),
            ("Birthday Bash", "It's a birthday bash, so light the candles up,",
             "raise a toast and fill the party cup."),
            ("Weekend Anthem", "This is our weekend anthem, sing it loud,",
             "we're jumping with the music and the crowd."),
            ("Strobe Light Love", "Strobe light love on a Saturday night,", "we move together and it feels so right."),
            ("Get on the Floor", "Get on the floor, get on the floor tonight,",
             "the beat is pumping and the lights are bright."),
            ("Pool Party", "Pool party, splash into the sun,", "the speakers bumping and we're having fun."),
            ("Groove Machine", "I'm a groove machine, I'm dancing on repeat,",
             "the rhythm's taking over from my head down to my feet."),
            ("Sweat and Sparkle", "Sweat and sparkle on the dancing floor,",
             "we'll party till the neighbors knock on the door."),
            ("Boom Box", "Crank the boom box, let the party start,", "the bass is beating like a second heart."),
            ("Limbo Line", "How low can you go on the limbo line?", "The drinks are flowing and the music's fine."),
            ("Saturday Slide", "Line up, line up for the Saturday slide,", "everybody's dancing side to side."),
            ("Dancefloor Royalty", "We're dancefloor royalty tonight,", "and our crown is made of disco light."),
        ),
        couplets=(
            ("The speakers thump, the lights are turning low,", "my friends are screaming for the DJ's show."),
            ("I put my dancing shoes on after work,", "I'm ready for the weekend and I'm ready to go berserk."),
            ("We're jumping, jumping, jumping to the beat,", "the party's moving and I can't feel my feet."),
            ("The DJ drops the record that we love,", "the glitter's raining from the ceiling up above."),
            ("We'll shake our bodies till the morning sun,", "the party's only getting started, everyone."),
            ("Pour another round and turn the music loud,", "I'm getting lost inside the dancing crowd."),
            ("The lights are flashing purple, pink and green,", "the wildest party that you've ever seen."),
            ("Spin me around and dip me to the ground,", "I love the way we're moving to this sound."),
            ("We're dancing on the tables, dancing in the hall,", "dancing till the sweat is dripping down the wall."),
            ("The bouncer let us in, we're on the list,", "this is a night that nobody should miss."),
            ("The beat goes boom and the crowd goes wild,", "I'm dancing like a reckless child."),
            ("Let's celebrate, let's party, let's have fun,", "we'll keep on dancing till the night is done."),
        ),
    ),
    Theme(
        name="grief and loss",
        genres=("singer-songwriter", "folk", "piano ballad"),
        artists=("Eleanor Finch", "The Quiet Hours", "Samuel Reed", "Willow and Ash"),
        songs=(
            ("Empty Chair", "There's an empty chair at the table tonight,",
             "we still set your plate and we leave on the light."),
            ("The Funeral Song", "They sang the funeral song in the rain,",
             "I held your picture and I whispered your name."),
            ("Goodbye, Father", "Goodbye, father, rest your weary hands,", "you've gone on ahead to a gentler land."),
            ("Gravestone Flowers", "I bring flowers to your gravestone every spring",
             "and tell you all about the little things."),
            ("Since You Went Away", "Since you went away the house is still,",
             "your coat is hanging by the windowsill."),
            ("Mourning Dove", "The mourning dove is singing by the door", "for someone who won't come home anymore."),
            ("Ashes to the Wind", "We scattered your ashes to the wind",
             "on the hill where you and I had always been."),
            ("Answering Machine", "I still play your voice on the answering machine",
             "just to hear you say hello, like nothing's in between."),
            ("Hospital Window", "Through the hospital window the sun went down,",
             "I held your hand as you left this town."),
            ("The Last Time I Saw You", "The last time I saw you, you were smiling through the pain,",
             "I didn't know that I would never see you again."),
            ("Little Angel", "Sleep, little angel, in the arms of God,", "we laid you gently underneath the sod."),
            ("Heavy Heart", "I carry this heavy heart from room to room,", "the days are long and full of gloom."),
            ("Memorial Day", "On Memorial Day I walk among the stones,",
             "reading all the names of the ones who've gone home."),
            ("Sweater in the Closet", "Your sweater's in the closet, I can't give it away,",
             "I hold it when I miss you at the end of the day."),
            ("Requiem", "Sing a requiem for the ones we've lost,", "the candles burn and we count the cost."),
            ("Tomorrow Without You", "How do I face tomorrow without you?",
             "The grief keeps coming back and there's nothing I can do."),
            ("Mama's Rocking Chair", "Mama's rocking chair is rocking on its own,",
             "the porch is quiet now that she is gone."),
            ("The Wake", "At the wake we told the stories of your life,",
             "the laughter mixed with tears, the joy and strife."),
            ("Candle in the Window", "I keep a candle in the window for you,",
             "though I know you're gone and the waiting's through."),
            ("Where the Lost Ones Go", "Tell me where the lost ones go",
             "when the coffin's lowered and the church bells toll."),
        ),
        couplets=(
            ("The doctor said there's nothing more to do,", "I sat beside your bed the whole night through."),
            ("We laid you down beneath the willow tree,", "the priest said words that meant nothing to me."),
            ("Your garden's overgrown, the roses died,", "I haven't had the strength to go outside."),
            ("I keep your letters in a shoebox by the bed", "and read them over, every word you said."),
            ("The sympathy cards are stacked up on the shelf,", "I'm learning how to live here by myself."),
            ("I hear your footsteps but it's just the rain,", "I know I'll never hear your voice again."),
            ("The church was full of people dressed in black,", "and all of us were wishing we could bring you back."),
            ("They say that time will heal this aching wound,", "but grief still finds me every afternoon."),
            ("I found your glasses folded on the stand", "and cried for hours holding them in my hand."),
            ("The headstone bears your name and both the years,", "and all the space between is filled with tears."),
            ("Each morning I forget for just a while,", "then I remember I won't see your smile."),
            ("I tell the children stories of your days", "so they'll remember you in little ways."),
        ),
    ),
    Theme(
        name="money and hustle",
        genres=("hip hop", "trap", "rap"),
        artists=("Lil Ledger", "Cash Flow Kingz", "Mina Dollaz", "Grindtime Gus"),
        songs=(
            ("Stack It Up", "Stack it up, stack it up, count it to the ceiling,",
             "money on my mind and I love the feeling."),
            ("Corner to the Penthouse", "From the corner to the penthouse, I made it on my own,",
             "the hustle built the house and the hustle built the throne."),
            ("Paper Chase", "I'm on the paper chase, I'm running for the bread,",
             "eyes on the prize and the money in my head."),
            ("Grind Don't Stop", "The grind don't stop and the clock don't sleep,",
             "I'm chasing every dollar and the hustle runs deep."),
            ("Big Bank", "Walking in the big bank with a bag to deposit,",
             "got the diamonds on the chain and the cash in the closet."),
            ("Rent Due", "Rent due Friday and my pockets are thin,", "gotta hustle harder, gotta find a way in."),
            ("Benjamins", "Benjamins falling like rain from the sky,", "I was broke yesterday, now I'm living high."),
            ("Side Hustle", "Nine to five, then my side hustle at night,",
             "building an empire and I'm doing it right."),
            ("Gold Chain", "Gold chain shining, I bought it with sweat,", "every single dollar and I paid every debt."),
            ("Bag Secured", "Bag secured, now I'm counting the racks,", "never looking back, I'm on the money tracks."),
            ("Broke No More", "I ain't broke no more, I ain't hungry no more,",
             "got the money in the safe and a Benz at the door."),
            ("Wall Street Dreams", "I got Wall Street dreams in a corner store,",
             "trading stocks on my phone by the register drawer."),
            ("Paycheck to Paycheck", "Living paycheck to paycheck, just trying to survive,",
             "working double shifts just to stay alive."),
            ("Cash Talk", "Let the cash talk, let the money speak loud,",
             "I came up from nothing and I'm making mama proud."),
            ("Hustler's Prayer", "Lord, bless the hustle and protect the bread,",
             "keep the haters off my back and the family fed."),
            ("Count It Twice", "Count it once, then count it twice,", "the money's good and the living's nice."),
            ("Vault", "Put it in the vault and lock it up tight,", "I'm getting paid while you sleep at night."),
            ("Entrepreneur", "I'm an entrepreneur with a hunger for more,",
             "turned a dollar into ten at the swap meet store."),
            ("Hundred Dollar Bills", "Hundred dollar bills in a rubber band,",
             "I built this fortune with my own two hands."),
            ("Profit Margin", "Watch the profit margin, watch it climb,",
             "I'm investing in myself and investing my time."),
        ),
        couplets=(
            ("I used to sleep on mama's kitchen floor,", "now I own the building and the corner store."),
            ("They said I'd never make it out the hood,", "now I'm flipping houses like they said I never could."),
            ("I keep my money moving, never let it sit,", "stocks and real estate, and I don't quit."),
            ("The landlord's knocking and the lights are cut,", "I'm hustling every hour just to fill my gut."),
            ("Got two jobs and a business on the side,", "I'm working every hour while the lazy ones hide."),
            ("I count the money at the kitchen table,", "feeding the family as long as I'm able."),
            ("The bank said no, so I found another way,", "I sold my mixtapes from the trunk every day."),
            ("I'm buying mama a house with a pool,", "they laughed at me when I dropped out of school."),
            ("Investors calling and the deals are signed,", "success is just a matter of the grind."),
            ("I wear the watch, I drive the foreign car,", "but I remember where the struggles are."),
            ("Dollar signs are dancing in my eyes,", "the hustle's never sleeping, watch me rise."),
            ("Every dollar earned, I put a dollar back,", "saving for the future, keep the budget on track."),
        ),
    ),
    Theme(
        name="winter and holidays",
        genres=("holiday pop", "jazz", "folk"),
        artists=("The Snowfall Sisters", "Noel Whitaker", "Frost and Fireside", "The Mistletoe Quartet"),
        songs=(
            ("Snowfall on Main Street", "Snowfall on Main Street, the shop windows glow,",
             "the carolers are singing in the falling snow."),
            ("Fireside", "Sit with me by the fireside tonight,", "the snow is falling soft and the world is white."),
            ("Christmas Eve Train", "On the Christmas Eve train I'm coming home",
             "through the frozen hills where the reindeer roam."),
            ("Mistletoe Kiss", "Meet me underneath the mistletoe", "for one warm kiss in the winter snow."),
            ("Candlelight Carol", "Sing a candlelight carol on this holy night,",
             "the star above the stable shining bright."),
            ("Snow Angels", "Making snow angels in the yard", "with frozen fingers and a holiday card."),
            ("New Year's Countdown", "Ten, nine, eight, it's the New Year's countdown,",
             "the champagne's flowing all across the town."),
            ("Winter Coat", "Wrap me up inside your winter coat,", "we'll sip the cocoa while the snowflakes float."),
            ("Sleigh Bells over the Hill", "Sleigh bells ringing over the hill,",
             "the night is frosty and the air is still."),
            ("Holiday Lights", "Holiday lights on every rooftop shine,",
             "we'll hang the stockings and we'll trim the pine."),
            ("December Morning", "December morning and the frost is on the glass,",
             "I wrap the presents while the snowplows pass."),
            ("Gingerbread House", "Build a gingerbread house with candy canes,",
             "the oven's warm and there's snow on the window panes."),
            ("Frozen Lake", "Skating on the frozen lake tonight", "under the moon and the Christmas lights."),
            ("Back Home for Christmas", "I'm coming back home for Christmas this year,",
             "to the tree and the family and the holiday cheer."),
            ("Blizzard", "The blizzard howls outside the cabin door,",
             "the fire's crackling and we're snowed in once more."),
            ("Wreath on the Door", "There's a wreath on the door and a light in the hall,",
             "and the snow keeps falling on the old stone wall."),
            ("Hot Cocoa", "Hot cocoa in a mug with marshmallows on top,",
             "the snow keeps falling and it just won't stop."),
            ("Solstice", "On the longest night we light the solstice fire",
             "and sing the winter songs with the village choir."),
            ("Santa's Sleigh", "Listen for Santa's sleigh upon the roof,",
             "the children swear they heard a reindeer's hoof."),
            ("Midnight in December", "Midnight in December, the bells begin to ring,",
             "we toast the year behind us and the hope the new year brings."),
        ),
        couplets=(
            ("The snow is piling up against the door,", "the kids are building snowmen by the store."),
            ("The kitchen smells of cinnamon and pine,", "the cookies cooling and the mulled red wine."),
            ("The carolers go singing door to door,", "we give them cocoa and they sing some more."),
            ("The frost has painted patterns on the pane,", "the sleigh is waiting in the snowy lane."),
            ("We wrapped the presents in the paper red", "and tucked the little ones into their bed."),
            ("The church bells ring on Christmas morning bright,", "the fields are sparkling in the winter light."),
            ("The icicles are hanging from the eaves,", "the snow has covered up the autumn leaves."),
            ("Grandma's knitting scarves beside the fire,", "the flames are dancing higher, ever higher."),
            ("We'll sled down Miller's Hill until it's dark", "and build a snow fort in the park."),
            ("The year is ending and the snow is deep,", "the world is quiet and the town's asleep."),
            ("The turkey's roasting and the table's set,", "this holiday's the best one yet."),
            ("The northern wind is whistling through the pines,", "the snowflakes fall in glittering lines."),
        ),
    ),
    Theme(
        name="road trips and cars",
        genres=("rock", "heartland rock", "Americana"),
        artists=("The Highway Saints", "Dusty Calloway", "Chrome Horizon", "Rae Delgado"),
        songs=(
            ("Interstate Sunrise", "Interstate sunrise burning through the glass,",
             "the white lines flying and the miles going fast."),
            ("Open Road", "Give me the open road and a full tank of gas,",
             "the radio loud and the world rolling past."),
            ("Convertible", "Top down in the convertible, hair in the wind,",
             "on the desert highway where the journey begins."),
            ("Mile Marker Ninety-Nine", "At mile marker ninety-nine we'll stop for the night",
             "in a roadside motel with a flickering light."),
            ("Gas Station Roses", "I bought you gas station roses in Tennessee,",
             "just you and me and the highway running free."),
            ("Chevy in the Rearview", "There's a Chevy in the rearview and the sun in my eyes,",
             "we're chasing the horizon under big blue skies."),
            ("Backseat Maps", "Backseat maps and a cooler full of pop,",
             "we'll drive across the country and we'll never stop."),
            ("Engine Roar", "Hear that engine roar, feel the V8 shake,",
             "we're burning down the highway for freedom's sake."),
            ("Coast to Coast", "Coast to coast in a rusty old van", "with a guitar, a dog, and a half-baked plan."),
            ("Truck Stop Diner", "At the truck stop diner at two in the morning,",
             "it's coffee and pie and the highway's calling."),
            ("Desert Highway", "Desert highway, nothing but sand and stars,",
             "just the hum of the tires and the sound of guitars."),
            ("Rearview Mirror", "In the rearview mirror my hometown fades,",
             "I've got the wheel in my hands and the road ahead is paved."),
            ("Hitchhiker", "Thumb out on the shoulder, a hitchhiker's song,",
             "I caught a ride with a trucker driving all night long."),
            ("Full Throttle", "Full throttle on the two-lane blacktop,",
             "the speedometer climbing and I'll never stop."),
            ("Sunday Drive", "Take a slow Sunday drive down the country lane,",
             "the windows rolled down and the smell of the rain."),
            ("License and Registration", "The trooper asked for my license and registration,",
             "I was doing ninety on the way to the celebration."),
            ("Highway Hymn", "This is a highway hymn for the wandering kind,",
             "with the miles in front and the past behind."),
            ("Two-Lane Heart", "I've got a two-lane heart and a restless soul,",
             "a tank full of gas and a long way to roll."),
            ("Motel Neon", "Motel neon flickers in the rain,", "we'll hit the road at sunrise and we'll drive again."),
            ("Wheels Keep Turning", "The wheels keep turning and the road goes on,",
             "we'll be three states over by the break of dawn."),
        ),
        couplets=(
            ("We packed the trunk with sleeping bags and snacks", "and left a note that said we won't be back."),
            ("The odometer keeps rolling through the night,", "the truckers flash their high beams left and right."),
            ("The radio is crackling with old rock and roll,", "I turn the volume up and let the engine roll."),
            ("We stopped for gas somewhere in Arizona,", "the cactus standing tall beneath the sun's corona."),
            ("My daddy taught me how to drive a stick", "in his old pickup truck down by the creek."),
            ("We read the billboards by the headlights' glow,", "a hundred miles from any town we know."),
            ("You put your feet up on the dashboard, babe,", "and sang along to every song we played."),
            ("The engine's humming like a happy cat,", "we've got a map, a compass, and a baseball hat."),
            ("We drove all night through fields of Kansas corn", "and saw the sunrise when the day was born."),
            ("The tires are singing on the hot asphalt,", "if we get lost, well, it's nobody's fault."),
            ("A flat tire somewhere off the interstate,", "we fixed it laughing, we were running late."),
            ("The mountains rising as we climb the pass,", "I shift to second and I hit the gas."),
        ),
    ),
)
# fmt: on


# --- the sample file -----------------------------------------------------------------------------


def sample_tracks() -> Iterator[dict[str, Any]]:
    """The sample data set: every titled song of every theme, in a fixed order.

    Each song is verse (two couplets), chorus, verse, chorus, and for a third of them a bridge couplet
    and a last chorus: 12 or 16 lines. Artist, genre and year are spread across the theme's lists.
    """
    rng = random.Random(20240611)  # noqa: S311 - reproducible data, not secrets
    for theme in THEMES:
        slug = theme.name.split()[0]
        for number, (title, *chorus) in enumerate(theme.songs, start=1):
            verses = rng.sample(theme.couplets, 5)
            lines = [*verses[0], *verses[1], *chorus, *verses[2], *verses[3], *chorus]
            if number % 3 == 0:
                lines += [*verses[4], *chorus]
            yield {
                "id": f"sample-{slug}-{number:02d}",
                "artist": theme.artists[(number - 1) % len(theme.artists)],
                "title": title,
                "lyrics": "\n".join(lines),
                "genre": theme.genres[(number - 1) % len(theme.genres)],
                "year": rng.randrange(1965, 2025),
                "theme": theme.name,
            }


def write_sample(path: Path = SAMPLE_PATH) -> int:
    """Regenerate the committed sample file; returns the number of tracks written."""
    count = 0
    with path.open("w", encoding="utf-8", newline="\n") as out:
        for track in sample_tracks():
            out.write(json.dumps(track, ensure_ascii=False) + "\n")
            count += 1
    return count


# --- synthetic tracks ----------------------------------------------------------------------------

# fmt: off
_FIRST_NAMES: Final = (
    "Ada", "Beau", "Cass", "Dara", "Eli", "Faye", "Gus", "Hana", "Ivo", "June", "Kit", "Lena", "Milo", "Nell",
    "Otis", "Pia", "Quinn", "Rosa", "Sol", "Tess", "Uma", "Vic", "Wren", "Xavi", "Yara", "Zed",
)
_LAST_NAMES: Final = (
    "Abbott", "Barlow", "Castell", "Dunmore", "Ellery", "Farrow", "Gable", "Hartley", "Ives", "Jessop", "Kestrel",
    "Lowry", "Marchetti", "Norwood", "Okafor", "Pryce", "Quill", "Rowan", "Sato", "Thorne", "Underhill", "Vance",
    "Whitlock", "Yoon",
)
_BAND_ADJECTIVES: Final = (
    "Velvet", "Hollow", "Electric", "Silver", "Paper", "Golden", "Wandering", "Midnight", "Rusty", "Crystal",
    "Northern", "Lucky", "Painted", "Restless", "Quiet", "Burning",
)
_BAND_NOUNS: Final = (
    "Foxes", "Lanterns", "Rivers", "Sparrows", "Engines", "Kings", "Ghosts", "Pilots", "Orchards", "Wolves",
    "Comets", "Saints", "Tigers", "Echoes", "Anchors", "Bells",
)
# fmt: on
_TITLE_SUFFIXES: Final = ("", "", "", "", "", " (Live)", " (Acoustic)", " (Remix)", " Part II", " (Reprise)")


def _artist_names() -> tuple[str, ...]:
    solo = [f"{first} {last}" for first in _FIRST_NAMES for last in _LAST_NAMES]
    bands = [f"The {adjective} {noun}" for adjective in _BAND_ADJECTIVES for noun in _BAND_NOUNS]
    return tuple(solo + bands)


_ARTISTS: Final = _artist_names()


def generate_tracks(n: int, seed: int = 0) -> Iterator[dict[str, Any]]:
    """``n`` synthetic tracks, identical for the same ``(n, seed)``; ids are unique within a seed.

    A track has a theme, one of that theme's choruses and two to five verse couplets (about 45 to
    115 words); one in five borrows a couplet from another theme, so neighbourhoods in embedding
    space overlap the way real catalogues do. Metadata: ``genre``, ``year`` and ``theme``.
    """
    if n < 0:
        raise ValueError("n must not be negative")
    rng = random.Random(seed)  # noqa: S311 - reproducible data, not secrets
    rand, randrange, sample = rng.random, rng.randrange, rng.sample
    themes = THEMES
    theme_count = len(themes)
    artists, artist_count = _ARTISTS, len(_ARTISTS)
    suffixes = _TITLE_SUFFIXES
    for index in range(n):
        theme = themes[randrange(theme_count)]
        title, chorus_a, chorus_b = theme.songs[randrange(len(theme.songs))]
        verses = sample(theme.couplets, 2 + randrange(4))
        if rand() < 0.2:
            other = themes[randrange(theme_count)]
            verses[-1] = other.couplets[randrange(len(other.couplets))]
        lines = [line for couplet in verses[:2] for line in couplet]
        lines += (chorus_a, chorus_b)
        lines += [line for couplet in verses[2:] for line in couplet]
        yield {
            "id": f"syn{seed}-{index}",
            "artist": artists[randrange(artist_count)],
            "title": title + suffixes[randrange(len(suffixes))],
            "lyrics": "\n".join(lines),
            "genre": theme.genres[randrange(len(theme.genres))],
            "year": 1960 + randrange(65),
            "theme": theme.name,
        }


# --- files, optionally salted with bad rows ------------------------------------------------------

TrackFileFormat = Literal["jsonl", "csv", "json"]

# Ways a row is made to fail validation, per format. A CSV cell has no type and a JSON array
# element must stay parseable, so each format gets the failures it can express.
_BAD_KINDS: Final[dict[str, tuple[str, ...]]] = {
    "jsonl": ("missing_lyrics", "empty_artist", "invalid_json", "wrong_type", "not_an_object"),
    "json": ("missing_lyrics", "empty_artist", "wrong_type", "not_an_object"),
    "csv": ("missing_lyrics", "empty_artist", "blank_title", "short_row"),
}


def _spoil(track: dict[str, Any], kind: str) -> Any:
    """A copy of ``track`` that fails validation in the way ``kind`` names."""
    if kind == "missing_lyrics":
        return {key: value for key, value in track.items() if key != "lyrics"}
    if kind == "empty_artist":
        return {**track, "artist": ""}
    if kind == "blank_title":
        return {**track, "title": "   "}
    if kind == "wrong_type":
        return {**track, "title": 404}
    if kind == "not_an_object":
        return [track["artist"], track["title"]]
    raise ValueError(f"unknown kind {kind!r}")


def write_tracks(
    path: Path,
    n: int,
    seed: int = 0,
    fmt: TrackFileFormat = "jsonl",
    *,
    bad_fraction: float = 0.0,
) -> WriteResult:
    """Write ``n`` rows of ``generate_tracks(n, seed)`` to ``path`` as jsonl, csv or a json array.

    With ``bad_fraction`` f, exactly ``floor(n * f)`` rows, spread evenly, are replaced by rows that
    fail validation (the kinds rotate: missing lyrics, empty artist, invalid JSON, wrong type, ...).
    The result counts what was written, so ``result.good`` is what an ingest must accept.
    """
    if not 0.0 <= bad_fraction <= 1.0:
        raise ValueError("bad_fraction must be between 0 and 1")
    if fmt not in _BAD_KINDS:
        raise ValueError(f"unknown format {fmt!r}")
    kinds = _BAD_KINDS[fmt]
    good = bad = 0
    with path.open("w", encoding="utf-8", newline="") as out:
        writer = _RowWriter(out, fmt)
        for index, track in enumerate(generate_tracks(n, seed)):
            # Row i is bad when floor((i + 1) * f) steps past floor(i * f): exact count, evenly spread.
            if bad_fraction and int((index + 1) * bad_fraction) > int(index * bad_fraction):
                writer.write_bad(track, kinds[bad % len(kinds)])
                bad += 1
            else:
                writer.write(track)
                good += 1
        writer.close()
    return WriteResult(good=good, bad=bad)


class _RowWriter:
    """Serialises rows in one format; JSON arrays need separators between, and a closing bracket."""

    def __init__(self, out: Any, fmt: TrackFileFormat) -> None:
        self._out = out
        self._fmt = fmt
        self._first = True
        self._csv = csv.writer(out) if fmt == "csv" else None
        if self._csv is not None:
            self._csv.writerow(CSV_COLUMNS)
        elif fmt == "json":
            out.write("[\n")

    def _write_json(self, value: Any) -> None:
        text = json.dumps(value, ensure_ascii=False)
        if self._fmt == "jsonl":
            self._out.write(text + "\n")
        else:
            self._out.write(text if self._first else ",\n" + text)
            self._first = False

    def write(self, track: dict[str, Any]) -> None:
        if self._csv is not None:
            self._csv.writerow([track[column] for column in CSV_COLUMNS])
        else:
            self._write_json(track)

    def write_bad(self, track: dict[str, Any], kind: str) -> None:
        if self._csv is not None:
            if kind == "short_row":
                self._csv.writerow([track["id"], track["artist"], track["title"]])
            else:
                row = {**track, "lyrics": ""} if kind == "missing_lyrics" else _spoil(track, kind)
                self._csv.writerow([row[column] for column in CSV_COLUMNS])
        elif kind == "invalid_json":
            # A record cut off mid-string: the line is not JSON at all.
            self._out.write(json.dumps(track, ensure_ascii=False)[:40] + "\n")
        else:
            self._write_json(_spoil(track, kind))

    def close(self) -> None:
        if self._fmt == "json":
            self._out.write("\n]\n")


if __name__ == "__main__":
    print(f"wrote {write_sample()} tracks to {SAMPLE_PATH.name}")
