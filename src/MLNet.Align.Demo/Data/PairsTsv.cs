using System.Text;
using MLNet.Align.Embeddings;

namespace MLNet.Align.Demo.Data;

/// <summary>One image-caption pair as stored in a pairs TSV.</summary>
/// <param name="Image">Image path relative to the TSV's folder, '/' separators (absolute paths are kept as given).</param>
/// <param name="Caption">Caption text, one line, no tabs.</param>
/// <param name="Source">Source name ("tuxpaint", "emoji", "openclipart", ...).</param>
/// <param name="Label">Coarse label (Tux Paint top folder, emoji group/subgroup, OpenClipart top folder).</param>
public sealed record PairRecord(string Image, string Caption, string Source, string Label);

/// <summary>Reads (through the library's <see cref="PairsFile"/>) and writes the demo's pairs TSV: UTF-8, header <c>image caption source label</c>
/// (tab-separated), one pair per line, image paths relative to the file (tests/fixtures/pairs/pairs.tsv is an
/// example). An image may appear on several lines (several captions).</summary>
public static class PairsTsv
{
    /// <summary>The header columns, in order.</summary>
    public static IReadOnlyList<string> Columns { get; } = ["image", "caption", "source", "label"];

    /// <summary>Reads a pairs TSV. Columns are found by header name; <c>image</c> and <c>caption</c> are required,
    /// <c>source</c>/<c>label</c> default to empty.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">Missing header column, or a row with too few fields / an empty image
    /// or caption (the message names file, line and column).</exception>
    public static IReadOnlyList<PairRecord> Read(string path)
    {
        // The library's one pairs reader parses the file (UTF-8 checked, field counts, quoting rules); this adds the
        // demo's own columns and its rule that every caption is non-empty.
        var file = PairsFile.Read(path, new PairsFileOptions { Delimiter = '\t' });
        bool hasSource = file.HasColumn("source"), hasLabel = file.HasColumn("label");
        var rows = new List<PairRecord>(file.Rows.Count);
        foreach (var r in file.Rows)
        {
            string caption = r.Caption!.Trim();
            if (caption.Length == 0)
                throw new InvalidDataException($"{path}: line {r.Line}: empty 'caption'.");
            rows.Add(new PairRecord(r.RawImagePath, caption, hasSource ? file.GetExtra(r, "source").Trim() : "",
                hasLabel ? file.GetExtra(r, "label").Trim() : ""));
        }
        return rows;
    }

    /// <summary>Writes pairs atomically (temp file + rename); tabs and line breaks inside fields become spaces.</summary>
    public static void Write(string path, IEnumerable<PairRecord> pairs)
    {
        var sb = new StringBuilder();
        sb.Append(string.Join('\t', Columns)).Append('\n');
        foreach (var p in pairs)
            sb.Append(Clean(p.Image)).Append('\t').Append(Clean(p.Caption)).Append('\t')
              .Append(Clean(p.Source)).Append('\t').Append(Clean(p.Label)).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    /// <summary>Absolute path of a pair's image, resolved against the TSV's folder.</summary>
    public static string ResolveImage(string tsvPath, PairRecord pair)
        => Path.GetFullPath(Path.Combine(Path.GetDirectoryName(Path.GetFullPath(tsvPath))!, pair.Image));

    private static string Clean(string s) => s.Replace('\t', ' ').Replace('\r', ' ').Replace('\n', ' ').Trim();
}
