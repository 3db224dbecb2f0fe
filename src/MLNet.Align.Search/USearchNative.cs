using System.Reflection;
using System.Runtime.InteropServices;
using Cloud.Unum.USearch;

namespace MLNet.Align.Search;

/// <summary>
/// Two calls of USearch's C API (libusearch_c, shipped by Cloud.Unum.USearch) that its C# binding does not expose:
/// setting ef_search on an index (a loaded index otherwise searches at the library default of 64, so the only way to
/// search wider was to ask for ef results) and a search into the caller's buffers (the binding allocates two arrays of
/// count entries per query). With both, a query at ef 512 asks for the few dozen candidates it re-scores.
/// </summary>
internal static class USearchNative
{
    private const string Library = "libusearch_c"; // the binding's own library name, resolved from the package's runtimes/

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern void usearch_change_expansion_search(IntPtr index, nuint expansion, out IntPtr error);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern nuint usearch_expansion_search(IntPtr index, out IntPtr error);

    [DllImport(Library, CallingConvention = CallingConvention.Cdecl)]
    private static extern nuint usearch_search(IntPtr index, ref float query, ScalarKind queryKind, nuint count,
        ref ulong keys, ref float distances, out IntPtr error);

    // The binding keeps its native handle in a private field; the package version is pinned (Directory.Packages.props),
    // USearchNativeTests fails if a new version renames it, and EmbeddedVectors refuses a graph whose handle it cannot read.
    private static readonly FieldInfo? HandleField = typeof(USearchIndex).GetField("_index", BindingFlags.NonPublic | BindingFlags.Instance);

    /// <summary>The native index handle of <paramref name="index"/>, or zero when this binding version hides it.</summary>
    public static IntPtr HandleOf(USearchIndex index) => HandleField?.GetValue(index) is IntPtr p ? p : IntPtr.Zero;

    /// <summary>Sets ef_search of the native index (USearch searches with max(ef_search, count)).</summary>
    /// <exception cref="USearchException">The library reported an error.</exception>
    public static void SetExpansionSearch(IntPtr handle, int expansion)
    {
        usearch_change_expansion_search(handle, (nuint)expansion, out var error);
        Check(error);
    }

    /// <summary>ef_search of the native index.</summary>
    public static int ExpansionSearch(IntPtr handle)
    {
        var ef = usearch_expansion_search(handle, out var error);
        Check(error);
        return (int)ef;
    }

    /// <summary>The nearest <c>keys.Length</c> keys to an fp32 query of the index's dimension, best first by the
    /// graph's distance; returns how many were found (fewer when the index holds fewer).</summary>
    /// <exception cref="ArgumentException">The buffers differ in length or are empty.</exception>
    /// <exception cref="USearchException">The library reported an error.</exception>
    public static int Search(IntPtr handle, ReadOnlySpan<float> query, Span<ulong> keys, Span<float> distances)
    {
        if (keys.Length == 0 || keys.Length != distances.Length) throw new ArgumentException($"{keys.Length} key slots and {distances.Length} distance slots: expected the same non-zero count.");
        var found = usearch_search(handle, ref MemoryMarshal.GetReference(query), ScalarKind.Float32, (nuint)keys.Length,
            ref MemoryMarshal.GetReference(keys), ref MemoryMarshal.GetReference(distances), out var error);
        Check(error);
        return (int)found;
    }

    private static void Check(IntPtr error)
    {
        if (error != IntPtr.Zero) throw new USearchException("USearch operation failed: " + Marshal.PtrToStringAnsi(error));
    }
}
