using System.Globalization;
using System.Text;

namespace MLNet.Align.Prompts;

/// <summary>The WordNet noun sense a class name was matched to.</summary>
/// <param name="ClassName">The class name as given ("Ankle boot").</param>
/// <param name="Lemma">The index.noun lemma that matched (lowercase, words joined by '_': "boot").</param>
/// <param name="SynsetOffset">Byte offset of the synset in data.noun (its id; an ImageNet wnid is "n" + 8 digits of it).</param>
/// <param name="SenseCount">Noun senses the lemma has; the first (most frequent) is the one used.</param>
/// <param name="Gloss">The synset's definition, cleaned by <see cref="WordNetGlosses.CleanGloss"/> (never empty).</param>
public sealed record WordNetMatch(string ClassName, string Lemma, long SynsetOffset, int SenseCount, string Gloss);

/// <summary>
/// Reads noun glosses from an installed WordNet 3.0 dictionary (Princeton's database files; on Debian the
/// <c>wordnet-base</c> package puts them in <c>/usr/share/wordnet</c>). Only <c>index.noun</c> and <c>data.noun</c> are
/// read (formats: WordNet's wndb(5WN) manual page); nothing is downloaded.
/// <para>Lookup of a class name (<see cref="Find"/>) tries, in order, the candidates of <see cref="Candidates"/>:
/// the whole name, each '/'-separated alternative ("T-shirt/top" -> "t-shirt", "top"), then the last word of a
/// multi-word name ("ankle boot" -> "boot"); each lowercased, with spaces as '_' (WordNet's lemma form), and each also
/// with WordNet's noun suffix rules (morphy: "trousers" -> "trouser", "boxes" -> "box", "berries" -> "berry",
/// "women" -> "woman"). The first candidate in index.noun wins.</para>
/// <para>A lemma with several noun senses gets its FIRST sense in index.noun, which WordNet orders by decreasing
/// frequency in its sense-tagged corpora: the most frequent sense, not necessarily the one the class means
/// (the first sense of "zero" is "a quantity of no importance", not the digit). Pass descriptions of your own
/// (<see cref="ClassDescriptions"/>) where that matters.</para>
/// </summary>
public sealed class WordNetGlosses
{
    private readonly string _dataPath;
    private readonly Dictionary<string, (long Offset, int Senses, int Line)> _firstSense;

    /// <summary>Opens the dictionary in <paramref name="wordnetDirectory"/> and reads its <c>index.noun</c>
    /// (~118k lemmas, a few MB; about 0.2 s). data.noun is read per lookup, by seeking to the synset offset.</summary>
    /// <param name="wordnetDirectory">Folder holding <c>index.noun</c> and <c>data.noun</c>.</param>
    /// <exception cref="DirectoryNotFoundException">The folder does not exist.</exception>
    /// <exception cref="FileNotFoundException">index.noun or data.noun is missing (the message names the file).</exception>
    /// <exception cref="InvalidDataException">A malformed index.noun line (the message gives the file, line and what was expected).</exception>
    public WordNetGlosses(string wordnetDirectory)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(wordnetDirectory);
        Directory = Path.GetFullPath(wordnetDirectory);
        if (!System.IO.Directory.Exists(Directory))
            throw new DirectoryNotFoundException($"WordNet folder not found: {Directory} (install Debian's wordnet-base, or give the folder holding index.noun and data.noun).");
        string indexPath = Path.Combine(Directory, "index.noun");
        _dataPath = Path.Combine(Directory, "data.noun");
        foreach (var f in new[] { indexPath, _dataPath })
            if (!File.Exists(f)) throw new FileNotFoundException($"WordNet file not found: {f} (the folder must hold index.noun and data.noun).", f);
        _firstSense = ReadIndex(indexPath);
    }

    /// <summary>Full path of the dictionary folder.</summary>
    public string Directory { get; }

    /// <summary>Noun lemmas in index.noun.</summary>
    public int LemmaCount => _firstSense.Count;

    /// <summary>Whether <paramref name="lemma"/> (WordNet form: lowercase, '_' between words) is a noun lemma.</summary>
    public bool Contains(string lemma) => _firstSense.ContainsKey(lemma);

    /// <summary>The most frequent noun sense of the first candidate of <paramref name="className"/> found in WordNet
    /// (see the class remarks), or null when none is a noun lemma.</summary>
    /// <exception cref="InvalidDataException">data.noun has no well-formed synset line at the offset index.noun
    /// gives (the message names both files, the index line and the offset).</exception>
    public WordNetMatch? Find(string className)
    {
        ArgumentNullException.ThrowIfNull(className);
        foreach (var lemma in Candidates(className))
        {
            if (!_firstSense.TryGetValue(lemma, out var s)) continue;
            return new WordNetMatch(className, lemma, s.Offset, s.Senses, ReadGloss(lemma, s.Offset, s.Line));
        }
        return null;
    }

    /// <summary>The lemmas tried for a class name, in order, without repeats (see the class remarks).</summary>
    public static IReadOnlyList<string> Candidates(string className)
    {
        ArgumentNullException.ThrowIfNull(className);
        var forms = new List<string>();
        string whole = ToLemma(className);
        if (whole.Length == 0) return [];
        forms.Add(whole);
        var alternatives = className.Split('/', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(ToLemma).Where(a => a.Length > 0).ToList();
        if (alternatives.Count > 1) forms.AddRange(alternatives);
        foreach (var f in forms.ToList())
        {
            int us = f.LastIndexOf('_');
            if (us >= 0 && us < f.Length - 1) forms.Add(f[(us + 1)..]);
        }
        var result = new List<string>();
        foreach (var f in forms)
        {
            result.Add(f);
            result.AddRange(Singulars(f));
        }
        return result.Distinct(StringComparer.Ordinal).ToArray();
    }

    /// <summary>WordNet's lemma form: trimmed, lowercase (invariant culture), runs of whitespace as one '_'.</summary>
    public static string ToLemma(string name) =>
        string.Join('_', name.Trim().ToLowerInvariant().Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));

    // WordNet's morphy detachment rules for nouns (morph.c): suffix -> replacement.
    private static readonly (string Suffix, string Ending)[] NounRules =
        [("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"), ("men", "man"), ("ies", "y")];

    /// <summary>Singular forms by WordNet's noun suffix rules (morphy without its exception list).</summary>
    private static IEnumerable<string> Singulars(string lemma)
    {
        foreach (var (suffix, ending) in NounRules)
            if (lemma.Length > suffix.Length + 1 && lemma.EndsWith(suffix, StringComparison.Ordinal) && !lemma.EndsWith("ss", StringComparison.Ordinal))
                yield return lemma[..^suffix.Length] + ending;
    }

    /// <summary>A gloss as a prompt fragment: the definition only, without WordNet's quoted usage examples (the
    /// ';'-separated parts that start with a double quote), a leading usage note in parentheses ("(usually in the
    /// plural) a garment..." -> "a garment..."), or trailing spaces, ';' and '.'.</summary>
    /// <param name="rawGloss">The text after "| " on a data.noun line.</param>
    /// <returns>The cleaned gloss; empty when nothing but examples was there.</returns>
    public static string CleanGloss(string rawGloss)
    {
        ArgumentNullException.ThrowIfNull(rawGloss);
        var parts = rawGloss.Split(';').Select(p => p.Trim()).TakeWhile(p => !p.StartsWith('"')).Where(p => p.Length > 0);
        string g = string.Join("; ", parts);
        if (g.StartsWith('('))
        {
            int close = g.IndexOf(')');
            if (close > 0 && close < g.Length - 1) g = g[(close + 1)..].TrimStart();
        }
        return g.TrimEnd(' ', ';', '.', ',', ':');
    }

    private static Dictionary<string, (long, int, int)> ReadIndex(string path)
    {
        var map = new Dictionary<string, (long, int, int)>(150_000, StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var line in File.ReadLines(path, Encoding.UTF8))
        {
            lineNo++;
            if (line.Length == 0 || line[0] == ' ') continue; // the licence header lines start with two spaces
            // lemma pos synset_cnt p_cnt [ptr_symbol...] sense_cnt tagsense_cnt synset_offset [synset_offset...]
            var f = line.Split(' ', StringSplitOptions.RemoveEmptyEntries);
            string where = $"{path}, line {lineNo}";
            if (f.Length < 7) throw new InvalidDataException($"{where}: expected 'lemma pos synset_cnt p_cnt [ptr...] sense_cnt tagsense_cnt offset...', found {f.Length} fields.");
            if (f[1] != "n") throw new InvalidDataException($"{where}: expected part of speech 'n' in field 2, found '{f[1]}'.");
            int synsets = ParseInt(f[2], where, "synset_cnt");
            int pointers = ParseInt(f[3], where, "p_cnt");
            int firstOffset = 4 + pointers + 2;
            if (synsets < 1 || f.Length != firstOffset + synsets)
                throw new InvalidDataException($"{where}: synset_cnt {synsets} and p_cnt {pointers} imply {firstOffset + Math.Max(synsets, 0)} fields, found {f.Length}.");
            if (!long.TryParse(f[firstOffset], NumberStyles.None, CultureInfo.InvariantCulture, out long offset))
                throw new InvalidDataException($"{where}: first synset offset '{f[firstOffset]}' is not a byte offset (8 digits).");
            map.TryAdd(f[0], (offset, synsets, lineNo));
        }
        if (map.Count == 0) throw new InvalidDataException($"{path}: no lemma lines (is it a WordNet index.noun?).");
        return map;
    }

    private static int ParseInt(string s, string where, string field) =>
        int.TryParse(s, NumberStyles.None, CultureInfo.InvariantCulture, out int v) ? v
            : throw new InvalidDataException($"{where}: field {field} '{s}' is not a non-negative integer.");

    private string ReadGloss(string lemma, long offset, int indexLine)
    {
        string where = $"{_dataPath}, byte offset {offset} (first sense of '{lemma}', index.noun line {indexLine})";
        string line;
        using (var fs = new FileStream(_dataPath, FileMode.Open, FileAccess.Read, FileShare.Read, 4096))
        {
            if (offset >= fs.Length) throw new InvalidDataException($"{where}: the offset is past the end of the file ({fs.Length} bytes).");
            fs.Seek(offset, SeekOrigin.Begin);
            using var reader = new StreamReader(fs, Encoding.UTF8);
            line = reader.ReadLine() ?? "";
        }
        string expected = offset.ToString("D8", CultureInfo.InvariantCulture);
        if (!line.StartsWith(expected + " ", StringComparison.Ordinal))
            throw new InvalidDataException($"{where}: expected a synset line starting with '{expected} ', found '{Truncate(line)}'.");
        int bar = line.IndexOf(" | ", StringComparison.Ordinal);
        if (bar < 0) throw new InvalidDataException($"{where}: the synset line has no ' | ' before its gloss.");
        string gloss = CleanGloss(line[(bar + 3)..]);
        if (gloss.Length == 0) throw new InvalidDataException($"{where}: the synset's gloss is empty once its quoted examples are removed.");
        return gloss;
    }

    private static string Truncate(string s) => s.Length <= 60 ? s : s[..60] + "...";
}
