using System.Text;
using Microsoft.VisualBasic.FileIO;

namespace MLNet.Align.Embeddings;

/// <summary>How to read a pairs file (see <see cref="PairsFile.Read"/>).</summary>
public sealed class PairsFileOptions
{
    /// <summary>Header name of the image-path column. Default "image".</summary>
    public string ImageColumn { get; set; } = "image";

    /// <summary>Header name of the caption column, default "caption"; null for an image-only file (a labelled set:
    /// images plus e.g. a "label" column, no captions).</summary>
    public string? CaptionColumn { get; set; } = "caption";

    /// <summary>Field delimiter; null = by extension (.tsv tab, .csv comma), otherwise sniffed from the header line
    /// (tab when it holds a tab, else comma).</summary>
    public char? Delimiter { get; set; }
}

/// <summary>One data row of a pairs file.</summary>
/// <param name="Index">0-based data-row index (header excluded): the pair's id in the file.</param>
/// <param name="Line">1-based line number of the row in the file (the header is line 1), for error messages.</param>
/// <param name="RawImagePath">The image path as written in the file.</param>
/// <param name="ImagePath">The image path resolved against the file's folder when relative (absolute, normalised).</param>
/// <param name="Caption">The caption as written (not trimmed), or null in an image-only file.</param>
/// <param name="ImageId">Index of the row's image in <see cref="PairsFile.Images"/> (rows sharing an image share it).</param>
/// <param name="Extra">Values of the other columns, in <see cref="PairsFile.ExtraColumns"/> order.</param>
public sealed record PairRow(int Index, int Line, string RawImagePath, string ImagePath, string? Caption, int ImageId,
    IReadOnlyList<string> Extra);

/// <summary>
/// A CSV or TSV file of image-caption pairs with a header row: an image-path column, a caption column and any extra
/// columns (kept, e.g. "source", "label"). Relative image paths resolve against the file's folder. Several rows may
/// name the same image (an image with several captions): <see cref="CaptionRowsByImage"/> keeps those caption sets,
/// which retrieval evaluation needs. CSV fields may be quoted (RFC 4180 style, parsed with the in-box
/// <see cref="TextFieldParser"/>); TSV fields are taken literally.
/// </summary>
public sealed class PairsFile
{
    private readonly Dictionary<string, int> _extraIndex;

    private PairsFile(string path, char delimiter, IReadOnlyList<string> header, PairsFileOptions options,
        IReadOnlyList<string> extraColumns, IReadOnlyList<PairRow> rows, IReadOnlyList<string> images,
        IReadOnlyList<IReadOnlyList<int>> captionRows, string sha256)
    {
        Path = path; Delimiter = delimiter; Header = header; ImageColumn = options.ImageColumn;
        CaptionColumn = options.CaptionColumn; ExtraColumns = extraColumns; Rows = rows; Images = images;
        CaptionRowsByImage = captionRows;
        Sha256 = sha256;
        _extraIndex = extraColumns.Select((c, i) => (c, i)).ToDictionary(t => t.c, t => t.i, StringComparer.Ordinal);
    }

    /// <summary>Absolute path of the file.</summary>
    public string Path { get; }
    /// <summary>Lower-case hex SHA-256 of the file's bytes (part of an embedding store's input identity).</summary>
    public string Sha256 { get; }
    /// <summary>Folder that relative image paths resolve against.</summary>
    public string Folder => System.IO.Path.GetDirectoryName(Path)!;
    /// <summary>The delimiter used.</summary>
    public char Delimiter { get; }
    /// <summary>The header row as found.</summary>
    public IReadOnlyList<string> Header { get; }
    /// <summary>Name of the image column.</summary>
    public string ImageColumn { get; }
    /// <summary>Name of the caption column, or null for an image-only file.</summary>
    public string? CaptionColumn { get; }
    /// <summary>Names of the columns other than image and caption, in header order.</summary>
    public IReadOnlyList<string> ExtraColumns { get; }
    /// <summary>Data rows in file order.</summary>
    public IReadOnlyList<PairRow> Rows { get; }
    /// <summary>Distinct resolved image paths in order of first appearance; <see cref="PairRow.ImageId"/> indexes it.</summary>
    public IReadOnlyList<string> Images { get; }
    /// <summary>For each image of <see cref="Images"/>, the indices of its rows (its caption set), in file order.</summary>
    public IReadOnlyList<IReadOnlyList<int>> CaptionRowsByImage { get; }

    /// <summary>Value of extra column <paramref name="column"/> in <paramref name="row"/>.</summary>
    /// <exception cref="KeyNotFoundException">No such extra column (the message lists the ones present).</exception>
    public string GetExtra(PairRow row, string column) => row.Extra[ExtraColumnIndex(column)];

    /// <summary>Whether the file has an extra column of that name.</summary>
    public bool HasColumn(string column) => _extraIndex.ContainsKey(column);

    private int ExtraColumnIndex(string column) => _extraIndex.TryGetValue(column, out int i) ? i
        : throw new KeyNotFoundException($"{Path}: no column '{column}'; extra columns are [{string.Join(", ", ExtraColumns)}].");

    /// <summary>Reads and validates a pairs file.</summary>
    /// <param name="path">The CSV/TSV file.</param>
    /// <param name="options">Column names and delimiter; null = defaults (image, caption, by extension).</param>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">Not a regular file (a folder, named pipe or device: checked before opening), empty file, a missing or duplicated column (the message lists the header
    /// found), a row with the wrong number of fields or an empty image path (the message names file, line, column,
    /// expected vs actual), malformed quoting, or bytes that are not UTF-8 (e.g. a Latin-1 file; line and byte named).</exception>
    public static PairsFile Read(string path, PairsFileOptions? options = null)
    {
        options ??= new PairsFileOptions();
        if (string.IsNullOrWhiteSpace(options.ImageColumn))
            throw new ArgumentException("The image column name must not be empty.", nameof(options));
        string full = System.IO.Path.GetFullPath(path);
        // A FIFO would block the read forever and /dev/zero would fill memory: only a regular file is read.
        var kind = InputFiles.KindOf(full);
        if (kind == FileKind.Missing) throw new FileNotFoundException($"Pairs file not found: {full}", full);
        if (kind != FileKind.Regular) throw new InvalidDataException($"Pairs file '{full}' is {InputFiles.Describe(kind)}, not a regular file; only regular files are read.");
        char delimiter = options.Delimiter ?? DetectDelimiter(full);
        string folder = System.IO.Path.GetDirectoryName(full)!;
        var bytes = File.ReadAllBytes(full);
        string sha = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(bytes));
        ThrowIfNotUtf8(bytes, full);

        using var parser = new TextFieldParser(full, Encoding.UTF8, detectEncoding: true)
        {
            TextFieldType = FieldType.Delimited,
            Delimiters = [delimiter.ToString()],
            // TSV carries no quoting convention: a quote is data there.
            HasFieldsEnclosedInQuotes = delimiter != '\t',
            TrimWhiteSpace = false,
        };

        string[]? header = ReadFields(parser, full);
        if (header == null) throw new InvalidDataException($"{full}: the file is empty; expected a header row with columns '{options.ImageColumn}'{(options.CaptionColumn != null ? $" and '{options.CaptionColumn}'" : "")}.");
        header = header.Select(h => h.Trim()).ToArray();
        if (header.Length > 0) header[0] = header[0].TrimStart('\uFEFF');
        string headerText = string.Join(", ", header.Select(h => $"'{h}'"));
        var dup = header.GroupBy(h => h, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dup != null) throw new InvalidDataException($"{full}, line 1 (header): column '{dup.Key}' appears {dup.Count()} times; header found: [{headerText}].");
        int imageCol = Array.IndexOf(header, options.ImageColumn);
        if (imageCol < 0) throw new InvalidDataException($"{full}, line 1 (header): missing image column '{options.ImageColumn}'; header found: [{headerText}] (delimiter {DelimiterName(delimiter)}).");
        int captionCol = -1;
        if (options.CaptionColumn != null)
        {
            captionCol = Array.IndexOf(header, options.CaptionColumn);
            if (captionCol < 0) throw new InvalidDataException($"{full}, line 1 (header): missing caption column '{options.CaptionColumn}'; header found: [{headerText}] (delimiter {DelimiterName(delimiter)}).");
        }
        var extraCols = Enumerable.Range(0, header.Length).Where(i => i != imageCol && i != captionCol).ToArray();

        var rows = new List<PairRow>();
        var images = new List<string>();
        var captionRows = new List<List<int>>();
        var imageIds = new Dictionary<string, int>(StringComparer.Ordinal);
        while (true)
        {
            long lineNo = parser.LineNumber;
            string[]? fields = ReadFields(parser, full);
            if (fields == null) break;
            int line = checked((int)lineNo);
            if (fields.Length != header.Length)
                throw new InvalidDataException($"{full}, line {line}: expected {header.Length} fields ({headerText}), found {fields.Length}.");
            // Kept exactly as written: a file name may begin or end with a space, and trimming it would silently point
            // at another (usually missing) file. A path that is only whitespace is an error.
            string raw = fields[imageCol];
            if (raw.Trim().Length == 0)
                throw new InvalidDataException($"{full}, line {line}, column '{header[imageCol]}': the image path is empty.");
            string resolved = System.IO.Path.GetFullPath(System.IO.Path.IsPathRooted(raw) ? raw : System.IO.Path.Combine(folder, raw));
            if (!imageIds.TryGetValue(resolved, out int imageId))
            {
                imageId = images.Count;
                imageIds.Add(resolved, imageId);
                images.Add(resolved);
                captionRows.Add([]);
            }
            captionRows[imageId].Add(rows.Count);
            rows.Add(new PairRow(rows.Count, line, raw, resolved, captionCol >= 0 ? fields[captionCol] : null, imageId,
                extraCols.Select(c => fields[c]).ToArray()));
        }
        return new PairsFile(full, delimiter, header, options, extraCols.Select(c => header[c]).ToArray(), rows, images,
            captionRows.Select(l => (IReadOnlyList<int>)l).ToArray(), sha);
    }

    /// <summary>Strict UTF-8 check (a UTF-8 BOM is fine; UTF-16 with a BOM is decoded as such): a Latin-1 or
    /// Windows-1252 file would otherwise be read with U+FFFD replacement characters and no warning.</summary>
    /// <exception cref="InvalidDataException">The first invalid byte, with its line and byte column.</exception>
    internal static void ThrowIfNotUtf8(ReadOnlySpan<byte> bytes, string file)
    {
        if (bytes.Length >= 2 && ((bytes[0] == 0xFF && bytes[1] == 0xFE) || (bytes[0] == 0xFE && bytes[1] == 0xFF))) return;
        int offset = bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]) ? 3 : 0;
        var rest = bytes[offset..];
        var status = System.Text.Unicode.Utf8.ToUtf16(rest, new char[rest.Length], out int read, out _, replaceInvalidSequences: false);
        if (status == System.Buffers.OperationStatus.Done) return;
        int at = offset + read;
        int line = 1, lineStart = 0;
        for (int i = 0; i < at; i++) if (bytes[i] == (byte)'\n') { line++; lineStart = i + 1; }
        string what = at < bytes.Length ? $"byte 0x{bytes[at]:X2}" : "a sequence cut off at the end of the file";
        throw new InvalidDataException($"{file}, line {line}, byte {at - lineStart + 1}: not valid UTF-8 ({what}); the file looks like Latin-1 or " +
            "Windows-1252 text. Re-save it as UTF-8 (e.g. iconv -f latin1 -t utf-8 IN > OUT).");
    }

    private static string[]? ReadFields(TextFieldParser parser, string file)
    {
        try { return parser.ReadFields(); }
        catch (MalformedLineException e)
        {
            throw new InvalidDataException($"{file}, line {e.LineNumber}: malformed field (unbalanced quotes?): {e.Message}", e);
        }
    }

    private static string DelimiterName(char d) => d switch { '\t' => "tab", ',' => "comma", ';' => "semicolon", _ => $"'{d}'" };

    /// <summary>.tsv = tab, .csv = comma, otherwise tab if the first line holds one, else comma.</summary>
    private static char DetectDelimiter(string path)
    {
        string ext = System.IO.Path.GetExtension(path);
        if (ext.Equals(".tsv", StringComparison.OrdinalIgnoreCase) || ext.Equals(".tab", StringComparison.OrdinalIgnoreCase)) return '\t';
        if (ext.Equals(".csv", StringComparison.OrdinalIgnoreCase)) return ',';
        using var reader = new StreamReader(path, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
        string? first = reader.ReadLine();
        return first != null && first.Contains('\t') ? '\t' : ',';
    }
}
