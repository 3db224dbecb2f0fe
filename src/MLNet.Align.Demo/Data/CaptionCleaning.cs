using System.Net;
using System.Text;
using System.Text.RegularExpressions;

namespace MLNet.Align.Demo.Data;

/// <summary>How OpenClipart titles and keywords become captions. Defaults were chosen by reading all 8,121 titles of
/// the Debian openclipart-svg package: about 40% are collection or tool boilerplate that says nothing about the
/// picture ("Part of the Flat Icon Collection (Wed Aug 25 23:29:46 2004)" on 950 files, "gramastar" on 1,375 star
/// shapes, "Clipart by Nicu Buculei - piggybank" on a drawing of light sabres).</summary>
public sealed class CaptionCleaningOptions
{
    /// <summary>Drop titles that are boilerplate: empty, "HASH(0x...)", "Part of the Flat Icon Collection ...",
    /// "Clipart by ...", or equal to the author's name. Default true.</summary>
    public bool DropBoilerplateTitles { get; set; } = true;

    /// <summary>A title carried by at least this many files names a collection, not a picture ("Lemon SVG theme",
    /// "AIGA_Symbol_Signs", "card"); such titles are dropped. 0 disables the rule. Default 20.</summary>
    public int CollectionTitleMinFiles { get; set; } = 20;

    /// <summary>Read '_' in titles and keywords as a space ("rss_button" -> "rss button"). Default true.</summary>
    public bool UnderscoresToSpaces { get; set; } = true;

    /// <summary>Append the SVG's <c>dc:subject</c> keywords: "title (k1, k2, ...)". Default true.</summary>
    public bool IncludeKeywords { get; set; } = true;

    /// <summary>At most this many keywords (file order, after de-duplication and the stop list). Default 8.</summary>
    public int MaxKeywords { get; set; } = 8;

    /// <summary>Keywords that are tool or collection tags, not content (compared case-insensitively after '_' ->
    /// space). "hash(0x...)" and empty keywords are always dropped.</summary>
    public ISet<string> KeywordStopList { get; set; } = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
        { "hash", "unsorted", "magick", "lemon theme icon", "theme", "icons", "clip art", "clipart", "svg", "png", "inkscape" };

    /// <summary>When the title is dropped, caption the pair by its file name instead ("aiga_waiting_room1.svg" ->
    /// "aiga waiting room") rather than dropping it. Default false: file names of collections are often codes
    /// ("star_63pt11step").</summary>
    public bool FileNameFallback { get; set; }
}

/// <summary>Caption cleaning for OpenClipart metadata (see <see cref="CaptionCleaningOptions"/>).</summary>
public static partial class CaptionCleaner
{
    /// <summary>Drop reason for an empty title.</summary>
    public const string EmptyTitle = "empty title";
    /// <summary>Drop reason for "HASH(0x...)".</summary>
    public const string HashTitle = "HASH(0x...) title";
    /// <summary>Drop reason for the Flat Icon Collection boilerplate.</summary>
    public const string FlatIconTitle = "'Part of the Flat Icon Collection' title";
    /// <summary>Drop reason for "Clipart by ..." titles (they name the author and often another drawing).</summary>
    public const string ClipartByTitle = "'Clipart by ...' title";
    /// <summary>Drop reason for a title equal to the author's name.</summary>
    public const string AuthorTitle = "title is the author's name";
    /// <summary>Drop reason for a title shared by many files.</summary>
    public const string CollectionTitle = "collection title (shared by many files)";

    /// <summary>Why a title is boilerplate, or null when it is usable. Applies the fixed rules only; the collection
    /// rule needs title counts (<see cref="CleanTitle"/>).</summary>
    /// <param name="title">Raw <c>dc:title</c> text (HTML entities allowed).</param>
    /// <param name="author">The creator's name (<c>dc:creator</c>), or null.</param>
    public static string? BoilerplateReason(string? title, string? author)
    {
        string t = Normalise(title ?? "", underscoresToSpaces: false);
        if (t.Length == 0) return EmptyTitle;
        if (HashRegex().IsMatch(t)) return HashTitle;
        if (t.StartsWith("Part of the Flat Icon Collection", StringComparison.OrdinalIgnoreCase)) return FlatIconTitle;
        if (t.StartsWith("Clipart by ", StringComparison.OrdinalIgnoreCase)) return ClipartByTitle;
        if (author is not null && Normalise(author, false).Length > 0
            && string.Equals(Normalise(author, false), t, StringComparison.OrdinalIgnoreCase)) return AuthorTitle;
        return null;
    }

    /// <summary>Cleans a usable title: decodes HTML entities (twice: some files are double-encoded), turns '_' into
    /// spaces when asked, collapses white space. Returns (caption title, null) or (null, drop reason).</summary>
    /// <param name="title">Raw title.</param>
    /// <param name="author">Creator name or null.</param>
    /// <param name="filesWithSameTitle">How many files carry this exact raw title (for the collection rule).</param>
    /// <param name="options">Cleaning options.</param>
    public static (string? Title, string? DropReason) CleanTitle(string? title, string? author, int filesWithSameTitle, CaptionCleaningOptions options)
    {
        ArgumentNullException.ThrowIfNull(options);
        if (options.DropBoilerplateTitles)
        {
            var reason = BoilerplateReason(title, author);
            if (reason is not null) return (null, reason);
            if (options.CollectionTitleMinFiles > 0 && filesWithSameTitle >= options.CollectionTitleMinFiles)
                return (null, CollectionTitle);
        }
        string t = Normalise(title ?? "", options.UnderscoresToSpaces);
        return t.Length == 0 ? (null, EmptyTitle) : (t, null);
    }

    /// <summary>Cleans keywords: normalises like titles, drops empty, "hash(0x...)", stop-listed and duplicate
    /// keywords and those equal to the title or the author's name, keeps file order, at most
    /// <see cref="CaptionCleaningOptions.MaxKeywords"/>.</summary>
    public static IReadOnlyList<string> CleanKeywords(IEnumerable<string> keywords, string? title, CaptionCleaningOptions options, string? author = null)
    {
        ArgumentNullException.ThrowIfNull(options);
        var seen = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        if (title is not null) seen.Add(title.Trim());
        if (author is not null) seen.Add(Normalise(author, options.UnderscoresToSpaces));
        var result = new List<string>();
        foreach (var raw in keywords)
        {
            if (result.Count >= options.MaxKeywords) break;
            string k = Normalise(raw, options.UnderscoresToSpaces);
            if (k.Length == 0 || HashRegex().IsMatch(k) || options.KeywordStopList.Contains(k)) continue;
            if (seen.Add(k)) result.Add(k);
        }
        return result;
    }

    /// <summary>Builds "title (k1, k2, ...)" or just the title when there is no keyword or keywords are off.</summary>
    public static string Compose(string title, IReadOnlyList<string> keywords, CaptionCleaningOptions options)
        => options.IncludeKeywords && keywords.Count > 0 ? $"{title} ({string.Join(", ", keywords)})" : title;

    /// <summary>A caption from a file name: stem, '_'/'-' as spaces, trailing digits and a trailing "_01"-style
    /// counter removed ("aiga_waiting_room1.svg" -> "aiga waiting room"). Empty when nothing word-like is left.</summary>
    public static string TitleFromFileName(string fileName)
    {
        string stem = Path.GetFileNameWithoutExtension(fileName).Replace('_', ' ').Replace('-', ' ');
        stem = TrailingCounterRegex().Replace(stem, "");
        stem = WhiteSpaceRegex().Replace(stem, " ").Trim();
        return stem.Any(char.IsLetter) ? stem : "";
    }

    /// <summary>HTML-decodes (twice), optionally maps '_' to ' ', collapses white space, trims.</summary>
    public static string Normalise(string text, bool underscoresToSpaces)
    {
        string t = WebUtility.HtmlDecode(WebUtility.HtmlDecode(text ?? ""));
        if (underscoresToSpaces) t = t.Replace('_', ' ');
        t = WhiteSpaceRegex().Replace(t, " ").Trim();
        return t;
    }

    [GeneratedRegex(@"^\s*hash\s*\(\s*0x[0-9a-f]+\s*\)\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex HashRegex();
    [GeneratedRegex(@"\s+")]
    private static partial Regex WhiteSpaceRegex();
    [GeneratedRegex(@"(\s*\d+)+$")]
    private static partial Regex TrailingCounterRegex();
}
