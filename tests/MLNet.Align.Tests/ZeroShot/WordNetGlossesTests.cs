using MLNet.Align.ZeroShot;
using Xunit.Abstractions;
using MLNet.Align.Prompts;

namespace MLNet.Align.Tests.ZeroShot;

public class WordNetGlossesTests(ITestOutputHelper output)
{
    [Fact]
    public void FindsLemmasMultiWordNamesAndTheMostFrequentSense()
    {
        using var x = WordNetExcerpt.Clothing();
        var wn = new WordNetGlosses(x.Dir);
        Assert.Equal(12, wn.LemmaCount);

        // One sense; the leading usage note and the quoted example are cleaned away.
        var trouser = wn.Find("Trouser")!;
        Assert.Equal(("trouser", x.Offsets["trouser"], 1, "a leg garment reaching the ankle"), (trouser.Lemma, trouser.SynsetOffset, trouser.SenseCount, trouser.Gloss));
        // Plural -> singular by the noun suffix rules.
        Assert.Equal("trouser", wn.Find("trousers")!.Lemma);
        // Multi-word name as a lemma with '_' (case-insensitive).
        var gym = wn.Find("Gym  Shoe")!;
        Assert.Equal(("gym_shoe", x.Offsets["gymshoe"]), (gym.Lemma, gym.SynsetOffset));
        // Several senses: the first in index.noun, not the first in data.noun; trailing '.' dropped.
        var bag = wn.Find("bag")!;
        Assert.Equal((x.Offsets["bag1"], 2, "a flexible container with a single opening"), (bag.SynsetOffset, bag.SenseCount, bag.Gloss));
        var boot = wn.Find("boot")!;
        Assert.Equal((x.Offsets["boot1"], "footwear covering the foot and lower leg"), (boot.SynsetOffset, boot.Gloss));
        // Not a lemma: the last word ("ankle boot" -> "boot"), and a '/' alternative ("T-shirt/top" -> "t-shirt").
        var ankle = wn.Find("Ankle boot")!;
        Assert.Equal(("Ankle boot", "boot", x.Offsets["boot1"]), (ankle.ClassName, ankle.Lemma, ankle.SynsetOffset));
        Assert.Equal(("t-shirt", x.Offsets["tshirt"]), (wn.Find("T-shirt/top")!.Lemma, wn.Find("T-shirt/top")!.SynsetOffset));
        Assert.Equal("tennis_shoe", wn.Find("Tennis shoes")!.Lemma);
        // Not found at all.
        Assert.Null(wn.Find("Pullover"));
        Assert.Null(wn.Find("zorblax widget"));
        Assert.Null(wn.Find("   "));
        Assert.True(wn.Contains("tee_shirt"));
        Assert.False(wn.Contains("T-shirt")); // index lemmas are lowercase
    }

    [Fact]
    public void CandidatesAreTriedWholeThenAlternativesThenLastWord()
    {
        Assert.Equal(["ankle_boot", "boot"], WordNetGlosses.Candidates(" Ankle   Boot "));
        Assert.Equal(["t-shirt/top", "t-shirt", "top"], WordNetGlosses.Candidates("T-shirt/top"));
        Assert.Equal(["running_shoes", "running_shoe", "shoes", "shoe"], WordNetGlosses.Candidates("running shoes"));
        Assert.Equal(["boxes", "boxe", "box"], WordNetGlosses.Candidates("boxes"));
        Assert.Equal(["berries", "berrie", "berry"], WordNetGlosses.Candidates("berries"));
        Assert.Equal(["women", "woman"], WordNetGlosses.Candidates("women"));
        Assert.Equal(["dress"], WordNetGlosses.Candidates("Dress")); // "-ss" is not a plural
        Assert.Empty(WordNetGlosses.Candidates(""));
    }

    [Theory]
    [InlineData("a shoe with straps  ", "a shoe with straps")]
    [InlineData("a one-piece garment; has skirt and bodice; \"she wore a dress\"", "a one-piece garment; has skirt and bodice")]
    [InlineData("a quantity of no importance; \"it looked like nothing\"; \"reduced to nil\"", "a quantity of no importance")]
    [InlineData("(usually in the plural) a garment; \"trousers\"", "a garment")]
    [InlineData("a plant (genus Rosa) with thorns.", "a plant (genus Rosa) with thorns")]
    [InlineData("\"only an example\"", "")]
    public void CleanGlossKeepsTheDefinitionOnly(string raw, string expected) => Assert.Equal(expected, WordNetGlosses.CleanGloss(raw));

    [Fact]
    public void MissingOrMalformedFilesGiveErrorsNamingTheFileAndLine()
    {
        var missingDir = Path.Combine(Path.GetTempPath(), $"no-wordnet-{Guid.NewGuid():N}");
        Assert.Contains(missingDir, Assert.Throws<DirectoryNotFoundException>(() => new WordNetGlosses(missingDir)).Message);

        using (var x = WordNetExcerpt.Clothing())
        {
            File.Delete(x.DataPath);
            var e = Assert.Throws<FileNotFoundException>(() => new WordNetGlosses(x.Dir));
            Assert.Contains("data.noun", e.Message);
            Assert.Equal(x.DataPath, e.FileName);
        }
        using (var x = WordNetExcerpt.Clothing())
        {
            File.Delete(x.IndexPath);
            Assert.Contains("index.noun", Assert.Throws<FileNotFoundException>(() => new WordNetGlosses(x.Dir)).Message);
        }
        using (var x = WordNetExcerpt.Clothing())
        {
            // Line 4 (after the header, bag and boot): a synset_cnt that disagrees with the offsets given.
            var lines = File.ReadAllLines(x.IndexPath);
            Assert.StartsWith("gym_shoe ", lines[3]);
            lines[3] = "gym_shoe n 3 1 @ 2 0 00000100 00000200";
            File.WriteAllLines(x.IndexPath, lines);
            var e = Assert.Throws<InvalidDataException>(() => new WordNetGlosses(x.Dir));
            output.WriteLine(e.Message);
            Assert.Contains($"{x.IndexPath}, line 4", e.Message);
            lines[3] = "gym_shoe n two 1 @ 2 0 00000100 00000200";
            File.WriteAllLines(x.IndexPath, lines);
            Assert.Contains("synset_cnt 'two'", Assert.Throws<InvalidDataException>(() => new WordNetGlosses(x.Dir)).Message);
        }
        using (var x = WordNetExcerpt.Clothing())
        {
            // data.noun shifted by one byte: every offset of index.noun now points mid-line.
            File.WriteAllText(x.DataPath, " " + File.ReadAllText(x.DataPath));
            var wn = new WordNetGlosses(x.Dir);
            var e = Assert.Throws<InvalidDataException>(() => wn.Find("sneaker"));
            output.WriteLine(e.Message);
            Assert.Contains(x.DataPath, e.Message);
            Assert.Contains($"byte offset {x.Offsets["gymshoe"]}", e.Message);
            Assert.Contains("index.noun line", e.Message);
        }
    }

    /// <summary>The installed dictionary (Debian wordnet-base); returns without checking when it is absent.</summary>
    [Fact]
    public void InstalledWordNetFindsClothingNamesAndNotNonsense()
    {
        const string dir = "/usr/share/wordnet";
        if (!File.Exists(Path.Combine(dir, "index.noun")) || !File.Exists(Path.Combine(dir, "data.noun")))
        {
            output.WriteLine($"skipped: no WordNet dictionary at {dir} (apt-get install wordnet-base)");
            return;
        }
        var wn = new WordNetGlosses(dir);
        Assert.InRange(wn.LemmaCount, 100_000, 130_000); // WordNet 3.0: 117,798 noun lemmas
        var sandal = wn.Find("Sandal")!;
        output.WriteLine($"sandal: {sandal}");
        Assert.Equal(("sandal", 4133789L), (sandal.Lemma, sandal.SynsetOffset)); // wnid n04133789, ImageNet class 774
        Assert.Contains("shoe", sandal.Gloss);
        var trouser = wn.Find("Trouser")!;
        output.WriteLine($"trouser: {trouser}");
        Assert.Equal(2, trouser.SenseCount);
        Assert.Contains("garment", trouser.Gloss);
        Assert.DoesNotContain("\"", trouser.Gloss);
        Assert.Equal("t-shirt", wn.Find("T-shirt/top")!.Lemma);
        Assert.Equal("boot", wn.Find("Ankle boot")!.Lemma);
        Assert.Null(wn.Find("qwzxv blorptang"));
    }
}
