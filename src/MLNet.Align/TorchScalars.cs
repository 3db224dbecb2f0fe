using TorchSharp;
using static TorchSharp.torch;

namespace MLNet.Align;

/// <summary>
/// Tensor arithmetic with .NET numbers that is safe under the garbage collector. TorchSharp 0.107 converts a number
/// into a native <see cref="Scalar"/> whose only owner is its finalizer (<c>tensor + tensor</c> even creates an
/// implicit alpha of 1): the managed wrapper is unreachable while the native op still reads it, so a GC triggered by
/// another thread (a progress bar, ONNX Runtime, the caller) can run the finalizer and free the scalar mid-op. libtorch
/// then reads freed memory and fails with "Expected false to be true ... toFloat/toDouble/toLong (Scalar.h:140)" or,
/// worse, computes with garbage (issue 10). Every helper here keeps its <see cref="Scalar"/> reachable until the native
/// call returns (a <c>using</c> local, disposed after the call) or uses a process-lifetime cached scalar.
/// The projection code (modules, trainer, optimiser, validation) and CKA use only these for number operands.
/// </summary>
internal static class TorchScalars
{
    /// <summary>alpha = 1 of <c>a + b</c> (TorchSharp's <c>add(t)</c> and <c>add_(scalar)</c> create it implicitly),
    /// held for the process lifetime (static root, never finalized).</summary>
    private static readonly Scalar s_one = 1.ToScalar();

    /// <summary>Held while seeding torch's process-wide generator and drawing from it (a model's default
    /// initialisation), so that two threads doing so at once cannot take each other's numbers. Training draws its
    /// dropout masks from a generator of its own and does not need it.</summary>
    internal static readonly object RandomGate = new();

    /// <summary>The cached alpha = 1, for overloads that take an explicit alpha.</summary>
    public static Scalar One => s_one;

    /// <summary>a + b (the operator's implicit alpha = 1, kept alive).</summary>
    public static Tensor Add(Tensor a, Tensor b) => a.add(b, s_one);

    /// <summary>a - b (TorchSharp's sub takes no alpha scalar; here for symmetry with Add).</summary>
    public static Tensor Sub(Tensor a, Tensor b) => a.sub(b);

    /// <summary>a += b in place.</summary>
    public static void AddInPlace(Tensor a, Tensor b) => a.add_(b, s_one);

    /// <summary>a * value.</summary>
    public static Tensor Mul(Tensor a, double value) { using var s = value.ToScalar(); return a.mul(s); }

    /// <summary>a / value (a double scalar, as <c>a / value</c> creates).</summary>
    public static Tensor Div(Tensor a, double value) { using var s = value.ToScalar(); return a.div(s); }

    /// <summary>a / value with an integer scalar, as <c>a / 2</c> creates (same result bits as the operator).</summary>
    public static Tensor Div(Tensor a, int value) { using var s = value.ToScalar(); return a.div(s); }

    /// <summary>a ^ exponent (integer exponent, as <c>pow(2)</c> creates).</summary>
    public static Tensor Pow(Tensor a, int exponent) { using var s = exponent.ToScalar(); return a.pow(s); }

    /// <summary>max(a, min) element-wise (float scalar).</summary>
    public static Tensor ClampMin(Tensor a, float min) { using var s = min.ToScalar(); return a.clamp_min(s); }

    /// <summary>Clamps a in place to [min, max] (float scalars).</summary>
    public static void ClampInPlace(Tensor a, float min, float max)
    {
        using var lo = min.ToScalar();
        using var hi = max.ToScalar();
        a.clamp_(lo, hi);
    }

    /// <summary>a with value where mask is true.</summary>
    public static Tensor MaskedFill(Tensor a, Tensor mask, double value) { using var s = value.ToScalar(); return a.masked_fill(mask, s); }

    /// <summary>a &gt; value element-wise (double scalar).</summary>
    public static Tensor GreaterThan(Tensor a, double value) { using var s = value.ToScalar(); return a.gt(s); }

    /// <summary>a &lt; value element-wise (integer scalar).</summary>
    public static Tensor LessThan(Tensor a, long value) { using var s = value.ToScalar(); return a.lt(s); }

    /// <summary>0, 1, ..., n-1 as an Int64 vector, built from a managed array (torch.arange takes implicit scalars).</summary>
    public static Tensor Range(long n)
    {
        var values = new long[n];
        for (long i = 0; i < n; i++) values[i] = i;
        return tensor(values);
    }
}
