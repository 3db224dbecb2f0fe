using System.Text;

namespace MLNet.Align.Tests.ZeroShot;

/// <summary>Writes a tiny WordNet-format dictionary (index.noun + data.noun, wndb(5WN) layout) into a temp folder: the
/// synsets and glosses are made up for the tests (no WordNet text), the byte offsets are computed as WordNet's are.</summary>
internal sealed class WordNetExcerpt : IDisposable
{
    /// <summary>A synset: its words as data.noun spells them ("T-shirt", "gym_shoe") and its raw gloss.</summary>
    public sealed record Synset(string Key, string[] Words, string Gloss);

    /// <summary>Writes the files. <paramref name="senses"/>: lemma -> synset keys, most frequent first.</summary>
    public WordNetExcerpt(IEnumerable<Synset> synsets, IEnumerable<(string Lemma, string[] Keys)> senses)
    {
        Dir = Path.Combine(Path.GetTempPath(), $"wordnet-excerpt-{Guid.NewGuid():N}");
        Directory.CreateDirectory(Dir);
        // The real files open with licence lines that start with two spaces; the reader must skip them.
        var data = new StringBuilder("  1 Test excerpt: made-up synsets in the WordNet 3.0 data.noun layout.  \n  2 \n");
        foreach (var s in synsets)
        {
            long offset = Encoding.ASCII.GetByteCount(data.ToString());
            Offsets[s.Key] = offset;
            data.Append($"{offset:D8} 06 n {s.Words.Length:x2} {string.Join(' ', s.Words.Select(w => $"{w} 0"))} 000 | {s.Gloss}  \n");
        }
        File.WriteAllText(DataPath, data.ToString(), Encoding.ASCII);
        var index = new StringBuilder("  1 Test excerpt: index.noun layout.  \n");
        foreach (var (lemma, keys) in senses.OrderBy(x => x.Lemma, StringComparer.Ordinal))
            index.Append($"{lemma} n {keys.Length} 1 @ {keys.Length} 0 {string.Join(' ', keys.Select(k => Offsets[k].ToString("D8")))}  \n");
        File.WriteAllText(IndexPath, index.ToString(), Encoding.ASCII);
    }

    public string Dir { get; }
    public string DataPath => Path.Combine(Dir, "data.noun");
    public string IndexPath => Path.Combine(Dir, "index.noun");
    public Dictionary<string, long> Offsets { get; } = [];

    /// <summary>A small clothing dictionary: one-sense, several-sense, multi-word and '/'-alternative cases.</summary>
    public static WordNetExcerpt Clothing() => new(
    [
        new("trouser", ["trouser", "pant"], "(usually in the plural) a leg garment reaching the ankle; \"he wore his trousers\""),
        new("boot1", ["boot"], "footwear covering the foot and lower leg"),
        new("boot2", ["boot", "kick"], "the act of kicking; \"he gave the ball a boot\"; \"a swift boot\""),
        new("tshirt", ["jersey", "T-shirt", "tee_shirt"], "a close-fitting pullover shirt"),
        new("gymshoe", ["gym_shoe", "sneaker", "tennis_shoe"], "a canvas shoe with a rubber sole"),
        new("bag2", ["bag", "handbag"], "a container carried by women"),
        new("bag1", ["bag"], "a flexible container with a single opening."),
    ],
    [
        ("trouser", ["trouser"]), ("pant", ["trouser"]), ("boot", ["boot1", "boot2"]), ("kick", ["boot2"]),
        ("jersey", ["tshirt"]), ("t-shirt", ["tshirt"]), ("tee_shirt", ["tshirt"]),
        ("gym_shoe", ["gymshoe"]), ("sneaker", ["gymshoe"]), ("tennis_shoe", ["gymshoe"]),
        // The excerpt lists bag1 first in index.noun though bag2 comes first in data.noun: order is the index's.
        ("bag", ["bag1", "bag2"]), ("handbag", ["bag2"]),
    ]);

    public void Dispose() { if (Directory.Exists(Dir)) Directory.Delete(Dir, true); }
}
